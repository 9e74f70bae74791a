package server_test

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// BenchmarkBroadcastDelivery measures one broadcast without Kafka: each op is a PUSH of a
// 64-byte payload to every one of 512 connections over loopback, waited for until every
// client read it, in the same run for:
//
//   - gateway: established sessions; the frame is delivered to each (DeliverEncoded: written
//     at once to an idle session; one Tally reported once), as the downlink's deliverer
//     handles a lone record: the path of one broadcast record.
//   - writev: plain TCP connections of Go's net package, one writev per connection
//     (net.Buffers.WriteTo), as test/bench/refserver -mode writev: the floor.
//
// cpu-ns/delivery is the process's CPU time per delivery, the clients' reads (the same code
// for both) included, so compare the two in one run, not absolute figures (TestFloor in
// test/bench measures the servers in processes of their own).
//
//	go test -run '^$' -bench BenchmarkBroadcastDelivery -benchtime 400x -count 5 ./gateway/server/
func BenchmarkBroadcastDelivery(b *testing.B) {
	const conns = 512
	frame, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{
		MessageId: "0123456789abcdef0123456789abcdef", Payload: make([]byte, 64),
		Position: &pb.Position{Partition: 3, Offset: 123456}, CreatedAtMs: time.Now().UnixMilli(),
	}}}, 1<<16)
	if err != nil {
		b.Fatal(err)
	}
	// read counts whole frames arriving on a client connection.
	read := func(r io.Reader, received *sync.WaitGroup) {
		buf := make([]byte, 64<<10)
		pending := 0
		for {
			n, err := r.Read(buf)
			if err != nil {
				return
			}
			pending += n
			for ; pending >= len(frame); pending -= len(frame) {
				received.Done()
			}
		}
	}
	measure := func(b *testing.B, received *sync.WaitGroup, broadcast func()) {
		b.ResetTimer()
		cpu := cpuTime(b)
		for range b.N {
			received.Add(conns)
			broadcast()
			received.Wait()
		}
		b.StopTimer()
		deliveries := float64(b.N * conns)
		b.ReportMetric(float64(cpuTime(b)-cpu)/deliveries, "cpu-ns/delivery")
		b.ReportMetric(float64(b.Elapsed())/deliveries, "ns/delivery")
	}

	b.Run("gateway", func(b *testing.B) {
		h := start(b, nil, func(c *config.Config) {
			c.Limits.PerAddress.MaxConnections = conns * 2
			c.Limits.PerAddress.HandshakeBurst = conns * 2
			c.Limits.PerAddress.HandshakesPerSecond = conns * 2
		})
		var received sync.WaitGroup
		for i := range conns {
			r := h.raw()
			r.handshake(h.token(fmt.Sprintf("u%d", i)))
			_ = r.nc.SetReadDeadline(time.Time{})
			go read(r.r, &received)
		}
		sessions := h.srv.Sessions().All(nil)
		if len(sessions) != conns {
			b.Fatalf("%d sessions, want %d", len(sessions), conns)
		}
		var tally session.Tally
		measure(b, &received, func() {
			for _, s := range sessions {
				h.srv.DeliverEncoded(s, "push", frame, &tally)
			}
			tally.Report()
		})
	})

	b.Run("writev", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		var received sync.WaitGroup
		servers := make([]net.Conn, 0, conns)
		for range conns {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			servers = append(servers, s)
			go read(c, &received)
		}
		measure(b, &received, func() {
			for _, c := range servers {
				bufs := net.Buffers{frame}
				if _, err := bufs.WriteTo(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
