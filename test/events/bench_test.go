package events

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
)

// BenchmarkHandshake measures connect (handshake acknowledged) + close against a real
// gateway process with session events on (published to a real topic) and off: the events'
// cost on the connect/disconnect path as a client sees it.
//
//	go test -run x -bench Handshake -benchtime 2000x -count 3 ./test/events/
func BenchmarkHandshake(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("events=%v", on), func(b *testing.B) {
			e := newEnv(b)
			g := e.start(fmt.Sprintf("gw-bench-%v", on), func(c *config.Config) {
				if !on {
					c.Kafka.EventsTopic = ""
				}
			})
			tok := token(b, "bench")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			b.ResetTimer()
			for range b.N {
				c, err := client.Connect(ctx, client.Options{Addr: g.ClientAddr, Token: tok, NoReconnect: true})
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
			b.StopTimer()
			if on {
				ms, err := g.Metrics()
				if err == nil {
					b.ReportMetric(ms.Value("tcpgw_session_events_dropped_total", "reason", "queue_full"), "dropped")
				}
			}
		})
	}
}
