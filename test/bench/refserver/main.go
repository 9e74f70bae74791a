// Command refserver is one of the two reference servers of the benchmarks' floor comparison
// (test/bench TestFloor, docs/benchmarks.md "Toward the floor"): the least a server can do to
// hold the gateway's connections and deliver the same broadcast.
//
//	refserver -mode netpoll -addr A -control C [-buffer 1024]
//	refserver -mode writev  -addr A -control C
//
// netpoll: a cloudwego/netpoll event loop with netpoll.LinkBufferCap and BufferSize set to
// -buffer (the gateway's limits.connectionBufferBytes, default 1024), as the gateway sets them.
// writev: Go's net package; a broadcast is one writev system call per delivery
// (net.Buffers.WriteTo) and nothing else, the floor for CPU per delivery without merging.
//
// Both answer a connection's first frame (the client's HANDSHAKE, not verified) with a
// HANDSHAKE_ACK, then hold the connection: netpoll discards what else arrives, writev reads
// nothing more. The control listener
// (loopback HTTP) serves net/http/pprof under /debug/pprof/ and
//
//	POST /broadcast?n=N&payload=P  N PUSH frames (P-byte payload, each encoded once) written to
//	                               every connection held, one write per delivery, connection
//	                               after connection; answers "deliveries D" when done.
//	GET  /conns                    the number of connections held.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // the live heap for the idle-memory floor
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cloudwego/netpoll"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

func main() {
	mode := flag.String("mode", "netpoll", "netpoll or writev")
	addr := flag.String("addr", "127.0.0.1:7000", "client address")
	control := flag.String("control", "127.0.0.1:7001", "loopback HTTP control and pprof address")
	buffer := flag.Int("buffer", 1024, "netpoll's LinkBufferCap and BufferSize (mode netpoll)")
	flag.Parse()
	if err := run(*mode, *addr, *control, *buffer); err != nil {
		fmt.Fprintln(os.Stderr, "refserver:", err)
		os.Exit(1)
	}
}

// holder is what both modes provide: the connections held, and a broadcast over them.
type holder interface {
	conns() int
	broadcast(frame []byte, n int) (deliveries int)
}

func run(mode, addr, control string, buffer int) error {
	ack, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_HandshakeAck{HandshakeAck: &pb.HandshakeAck{
		SessionId: "refserver-session", HeartbeatIntervalMs: 30000, ProtocolVersion: protocol.Version,
	}}}, 1<<16)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var h holder
	switch mode {
	case "netpoll":
		h, err = serveNetpoll(ln, ack, buffer)
	case "writev":
		h = serveWritev(ln, ack)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		return err
	}
	http.HandleFunc("POST /broadcast", func(w http.ResponseWriter, r *http.Request) {
		n, err1 := strconv.Atoi(r.URL.Query().Get("n"))
		size, err2 := strconv.Atoi(r.URL.Query().Get("payload"))
		if err := errors.Join(err1, err2); err != nil || n < 1 || size < 8 {
			http.Error(w, "want n ≥ 1 and payload ≥ 8", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "deliveries %d\n", h.broadcast(pushFrame(size), n))
	})
	http.HandleFunc("GET /conns", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%d\n", h.conns())
	})
	cl, err := net.Listen("tcp", control)
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(cl, nil) }()
	fmt.Fprintf(os.Stderr, "refserver %s serving clients on %s, control on %s\n", mode, ln.Addr(), cl.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-ctx.Done()
	return nil
}

// pushFrame is a PUSH shaped like the gateway's for a broadcast record: a message id, the
// payload (starting with the send time in Unix ns, as the benchmark's publisher writes it), a
// position and created_at_ms.
func pushFrame(size int) []byte {
	now := time.Now()
	payload := make([]byte, size)
	binary.BigEndian.PutUint64(payload, uint64(now.UnixNano()))
	b, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{
		MessageId: "0123456789abcdef0123456789abcdef", Payload: payload,
		Position: &pb.Position{Partition: 3, Offset: 123456}, CreatedAtMs: now.UnixMilli(),
	}}}, 1<<16)
	if err != nil {
		panic(err) // sizes are bounded above
	}
	return b
}

// netpollServer holds connections on a netpoll event loop.
type netpollServer struct {
	ack []byte
	mu  sync.Mutex
	all map[netpoll.Connection]struct{}
}

func serveNetpoll(ln net.Listener, ack []byte, buffer int) (holder, error) {
	netpoll.LinkBufferCap = buffer
	if err := netpoll.Configure(netpoll.Config{BufferSize: buffer}); err != nil {
		return nil, err
	}
	s := &netpollServer{ack: ack, all: map[netpoll.Connection]struct{}{}}
	loop, err := netpoll.NewEventLoop(s.onRequest,
		netpoll.WithOnDisconnect(func(_ context.Context, c netpoll.Connection) {
			s.mu.Lock()
			delete(s.all, c)
			s.mu.Unlock()
		}))
	if err != nil {
		return nil, err
	}
	go func() { _ = loop.Serve(ln) }()
	return s, nil
}

// onRequest answers the first frame with the HANDSHAKE_ACK and discards everything else.
func (s *netpollServer) onRequest(_ context.Context, c netpoll.Connection) error {
	r := c.Reader()
	_ = r.Skip(r.Len())
	_ = r.Release()
	s.mu.Lock()
	_, known := s.all[c]
	if !known {
		s.all[c] = struct{}{}
	}
	s.mu.Unlock()
	if known {
		return nil
	}
	if _, err := c.Writer().WriteBinary(s.ack); err != nil {
		return err
	}
	return c.Writer().Flush()
}

func (s *netpollServer) conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all)
}

// broadcast writes frame n times to every connection: one WriteBinary and one Flush (one
// sendmsg) per delivery.
func (s *netpollServer) broadcast(frame []byte, n int) int {
	s.mu.Lock()
	all := make([]netpoll.Connection, 0, len(s.all))
	for c := range s.all {
		all = append(all, c)
	}
	s.mu.Unlock()
	d := 0
	for range n {
		for _, c := range all {
			w := c.Writer()
			if _, err := w.WriteBinary(frame); err != nil {
				continue
			}
			if w.Flush() == nil {
				d++
			}
		}
	}
	return d
}

// writevServer holds connections of Go's net package; a goroutine per connection only until
// its handshake is answered. Nothing reads afterwards (the receivers send nothing more).
type writevServer struct {
	mu  sync.Mutex
	all []*net.TCPConn
}

func serveWritev(ln net.Listener, ack []byte) holder {
	s := &writevServer{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 4096)
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Read(buf); err != nil {
					c.Close()
					return
				}
				if _, err := c.Write(ack); err != nil {
					c.Close()
					return
				}
				_ = c.SetReadDeadline(time.Time{})
				s.mu.Lock()
				s.all = append(s.all, c.(*net.TCPConn))
				s.mu.Unlock()
			}()
		}
	}()
	return s
}

func (s *writevServer) conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all)
}

// broadcast writes frame n times to every connection: one writev system call per delivery.
func (s *writevServer) broadcast(frame []byte, n int) int {
	s.mu.Lock()
	all := s.all
	s.mu.Unlock()
	d := 0
	for range n {
		for _, c := range all {
			bufs := net.Buffers{frame}
			if _, err := bufs.WriteTo(c); err == nil {
				d++
			}
		}
	}
	return d
}
