package events

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// BenchmarkConnectDisconnect is what session events add to the data plane per connection:
// a CONNECTED and a DISCONNECTED built and queued (the queue drained as fast as it fills,
// so this is the enqueue path; Kafka's writes run on the writer goroutine).
func BenchmarkConnectDisconnect(b *testing.B) {
	p := &Publisher{
		o:     Options{ServerID: "gw-0", Metrics: metrics.NewEvents(prometheus.NewRegistry(), Kinds())},
		now:   time.Now,
		epoch: time.Now().UnixMilli(),
		queue: make(chan *pb.SessionEvent, 4096),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range p.queue {
		}
	}()
	s := testSession("alice", "phone", time.Now())
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p.Connected(s, uint64(i), nil)
		p.Disconnected(s, uint64(i), session.ReasonClientClosed)
	}
	b.StopTimer()
	close(p.queue)
	<-done
}
