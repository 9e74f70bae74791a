package events

import (
	"bufio"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/apiversions"
	"github.com/segmentio/kafka-go/sasl/plain"

	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
)

// stallingBroker listens on loopback, answers each connection's ApiVersions and then reads
// and never answers: a broker stuck in its SASL exchange. The connections close with the test.
func stallingBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { stall(c) })
		}
	})
	return ln.Addr().String()
}

func stall(c net.Conn) {
	r := bufio.NewReader(c)
	version, correlation, _, _, err := protocol.ReadRequest(r)
	if err != nil {
		return
	}
	keys := []apiversions.ApiKeyResponse{
		{ApiKey: int16(protocol.Produce), MinVersion: 0, MaxVersion: 7},
		{ApiKey: int16(protocol.Metadata), MinVersion: 0, MaxVersion: 8},
		{ApiKey: int16(protocol.SaslHandshake), MinVersion: 0, MaxVersion: 1},
		{ApiKey: int16(protocol.SaslAuthenticate), MinVersion: 0, MaxVersion: 1},
		{ApiKey: int16(protocol.ApiVersions), MinVersion: 0, MaxVersion: 2},
	}
	if protocol.WriteResponse(c, version, correlation, &apiversions.Response{ApiKeys: keys}) != nil {
		return
	}
	_, _ = r.WriteTo(discard{}) // the SASL handshake, never answered
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// TestWriteBoundedWhenBrokerStalls: kafka-go clears a new connection's deadline before its
// SASL exchange and WriteMessages waits for the transport's first metadata under the
// caller's context, so a broker that stalls there held the events writer (and with it every
// later event) for good. The batch now fails, counted, once the write budget is spent.
func TestWriteBoundedWhenBrokerStalls(t *testing.T) {
	m := metrics.NewEvents(prometheus.NewRegistry(), Kinds())
	p := New(Options{Brokers: []string{stallingBroker(t)}, Topic: "events", ServerID: "gw-0", QueueLength: 4, Metrics: m,
		Security: kafkasec.Security{SASL: plain.Mechanism{Username: "u", Password: "p"}}})
	p.budget = 300 * time.Millisecond // read by run only after the first event is queued
	p.Connected(testSession("alice", "s1", time.Now()), 1, nil)
	failed := m.Dropped.WithLabelValues(metrics.EventWriteFailed)
	deadline := time.Now().Add(dialTimeout + 10*time.Second)
	for testutil.ToFloat64(failed) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the write to a stalled broker still holds the writer after %v (write_failed %v)",
				dialTimeout+10*time.Second, testutil.ToFloat64(failed))
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Close(ctx)
}
