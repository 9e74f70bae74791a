package server_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// BenchmarkBurstDelivery measures the downlink's delivery path without Kafka: each op is a
// burst of 16 pushes (256-byte payload) to every one of 256 established sessions, queued as
// the consumer queues them (Session.Send, one record at a time), then waited for until every
// byte has reached its client. Each Send that finds its session idle starts a flush, so this
// is the path a flush's start costs on. cpu-ns/delivery is the process's CPU time per
// delivered frame, the raw clients' reads included, so compare runs, not absolute figures.
//
//	go test -run '^$' -bench BenchmarkBurstDelivery -benchtime 200x -count 6 ./gateway/server/
func BenchmarkBurstDelivery(b *testing.B) {
	const conns, burst = 256, 16
	h := start(b, nil, func(c *config.Config) {
		c.Limits.PerAddress.MaxConnections = conns * 2
		c.Limits.PerAddress.HandshakeBurst = conns * 2
		c.Limits.PerAddress.HandshakesPerSecond = conns * 2
	})
	frame, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{MessageId: "m", Payload: make([]byte, 256)}}}, 1<<16)
	if err != nil {
		b.Fatal(err)
	}
	var received sync.WaitGroup
	for i := range conns {
		r := h.raw()
		r.handshake(h.token(fmt.Sprintf("u%d", i)))
		_ = r.nc.SetReadDeadline(time.Time{})
		go func() {
			buf := make([]byte, 64<<10)
			pending := 0
			for {
				n, err := r.r.Read(buf)
				if err != nil {
					return
				}
				pending += n
				for ; pending >= len(frame); pending -= len(frame) {
					received.Done()
				}
			}
		}()
	}
	sessions := h.srv.Sessions().All(nil)
	if len(sessions) != conns {
		b.Fatalf("%d sessions, want %d", len(sessions), conns)
	}
	b.ResetTimer()
	cpu := cpuTime(b)
	for range b.N {
		received.Add(conns * burst)
		for range burst {
			for _, s := range sessions {
				if err := s.Send(frame); err != nil {
					b.Fatal(err)
				}
			}
		}
		received.Wait()
	}
	b.StopTimer()
	deliveries := float64(b.N * conns * burst)
	b.ReportMetric(float64(cpuTime(b)-cpu)/deliveries, "cpu-ns/delivery")
	b.ReportMetric(float64(b.Elapsed())/deliveries, "ns/delivery")
}
