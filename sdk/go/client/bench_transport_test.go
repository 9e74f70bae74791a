package client_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// The client's cost per transport, TCP against WebSocket in the same run (docs/benchmarks.md,
// "Go SDK transports"): CPU per delivered push and memory per idle connection. The gateway is
// a minimal in-process one (it answers the handshake and writes pre-encoded pushes), the same
// for both but for WebSocket's upgrade and message headers.

// benchGateway accepts connections, upgrades them when overWS, answers the HANDSHAKE and hands
// each connection on.
func benchGateway(b *testing.B, overWS bool) (string, chan net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	conns := make(chan net.Conn, 1024)
	ack, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_HandshakeAck{HandshakeAck: &pb.HandshakeAck{
		ProtocolVersion: protocol.Version, SessionId: "s1", UserId: "bench", ServerId: "bench"}}}, 1<<16)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			b.Cleanup(func() { nc.Close() })
			r := bufio.NewReader(nc)
			out := ack
			if overWS {
				if _, err := (ws.Upgrader{Protocol: func([]byte) bool { return true }}).Upgrade(nc); err != nil {
					continue
				}
				h, err := ws.ReadHeader(r) // the HANDSHAKE message (masked: its bytes are not looked at)
				if err != nil || h.Length > 1<<16 {
					continue
				}
				if _, err := r.Discard(int(h.Length)); err != nil {
					continue
				}
				out = wsMessages(ack)
			} else if _, _, err := protocol.Read(r, 1<<16, nil); err != nil {
				continue
			}
			if _, err := nc.Write(out); err != nil {
				continue
			}
			conns <- nc
		}
	}()
	addr := ln.Addr().String()
	if overWS {
		addr = "ws://" + addr + "/tcpgw"
	}
	return addr, conns
}

// wsMessages is every frame in b as one binary message of the gateway's.
func wsMessages(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		n := protocol.HeaderLen + int(binary.BigEndian.Uint32(b))
		var h [ws.MaxHeaderSize]byte
		w := &sliceWriter{buf: h[:0]}
		_ = ws.WriteHeader(w, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: int64(n)})
		out = append(append(out, w.buf...), b[:n]...)
		b = b[n:]
	}
	return out
}

type sliceWriter struct{ buf []byte }

func (w *sliceWriter) Write(p []byte) (int, error) { w.buf = append(w.buf, p...); return len(p), nil }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDeliver: b.N pushes of 64 bytes, 64 per write, to one client; cpu-ns/push is the
// process's CPU (client and the minimal gateway) per delivered push.
func BenchmarkDeliver(b *testing.B) {
	for _, tc := range []struct {
		name   string
		overWS bool
	}{{"tcp", false}, {"websocket", true}} {
		b.Run(tc.name, func(b *testing.B) {
			addr, conns := benchGateway(b, tc.overWS)
			var got atomic.Int64
			done := make(chan struct{})
			c, err := client.Connect(context.Background(), client.Options{Addr: addr, Token: "t", NoReconnect: true, DedupWindow: -1,
				OnPush: func(*client.Push) {
					if got.Add(1) == int64(b.N) {
						close(done)
					}
				}})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			nc := <-conns
			const batch = 64
			var writes [][]byte
			for i := 0; i < b.N; i += batch {
				var w []byte
				for j := i; j < min(i+batch, b.N); j++ {
					w, err = protocol.Append(w, &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{
						Position: &pb.Position{Partition: 0, Offset: int64(j)}, Payload: make([]byte, 64)}}}, 1<<16)
					if err != nil {
						b.Fatal(err)
					}
				}
				if tc.overWS {
					w = wsMessages(w)
				}
				writes = append(writes, w)
			}
			b.ResetTimer()
			cpu := cpuTime()
			for _, w := range writes {
				if _, err := nc.Write(w); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-done:
			case <-time.After(time.Minute):
				b.Fatalf("%d of %d pushes delivered within a minute", got.Load(), b.N)
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/push")
		})
	}
}

// BenchmarkIdleConn: b.N connected clients, idle (no heartbeat, no dedup window: the
// transport's share); heap+stack-B/conn is the growth of the process's heap and stacks per
// client (the minimal gateway's side included: a net.Conn and a bufio.Reader of 4 KiB per
// connection, the same for both transports). Two sockets per client: b.N is capped below the
// open-files limit (run with -benchtime 1000x).
const maxIdleConns = 5000

func BenchmarkIdleConn(b *testing.B) {
	for _, tc := range []struct {
		name   string
		overWS bool
	}{{"tcp", false}, {"websocket", true}} {
		b.Run(tc.name, func(b *testing.B) {
			if b.N > maxIdleConns {
				b.Skipf("%d clients: at most %d (open files)", b.N, maxIdleConns)
			}
			addr, conns := benchGateway(b, tc.overWS)
			inUse := func() uint64 {
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				return m.HeapInuse + m.StackInuse
			}
			before := inUse()
			clients := make([]*client.Client, 0, b.N)
			for range b.N {
				c, err := client.Connect(context.Background(), client.Options{Addr: addr, Token: "t", NoReconnect: true, DedupWindow: -1})
				if err != nil {
					b.Fatal(err)
				}
				<-conns
				clients = append(clients, c)
			}
			b.StopTimer()
			after := inUse()
			b.ReportMetric(float64(int64(after)-int64(before))/float64(b.N), "heap+stack-B/conn")
			for _, c := range clients {
				_ = c.Close()
			}
		})
	}
}
