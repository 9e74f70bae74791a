package client_test

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// timeout bounds every wait on an event in these tests.
const timeout = 10 * time.Second

// fakeGateway is a scripted gateway on a loopback port: each test reads and writes the frames
// of the protocol by hand, to put the SDK in situations a real gateway reaches only slowly
// (an expired token, a refused handshake, a duplicate record).
type fakeGateway struct {
	t     *testing.T
	ln    net.Listener
	conns chan *fakeConn
}

type fakeConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func newFakeGateway(t *testing.T) *fakeGateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{t: t, ln: ln, conns: make(chan *fakeConn, 16)}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			g.conns <- &fakeConn{t: t, nc: nc, r: bufio.NewReader(nc)}
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return g
}

func (g *fakeGateway) addr() string { return g.ln.Addr().String() }

// accept waits for the next connection.
func (g *fakeGateway) accept() *fakeConn {
	g.t.Helper()
	select {
	case c := <-g.conns:
		g.t.Cleanup(func() { c.nc.Close() })
		return c
	case <-time.After(timeout):
		g.t.Fatal("no connection from the client")
		return nil
	}
}

// read waits for the client's next frame.
func (c *fakeConn) read() *pb.Frame {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	f, _, err := protocol.Read(c.r, 1<<16, nil)
	if err != nil {
		c.t.Fatalf("reading the client's frame: %v", err)
	}
	return f
}

func (c *fakeConn) write(f *pb.Frame) {
	c.t.Helper()
	b, err := protocol.Append(nil, f, 1<<16)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("writing %s: %v", protocol.Kind(f), err)
	}
}

// handshake reads the client's HANDSHAKE and returns its token.
func (c *fakeConn) handshake() string {
	c.t.Helper()
	hs := c.read().GetHandshake()
	if hs == nil {
		c.t.Fatal("the first frame is not a HANDSHAKE")
	}
	return hs.Token
}

// accept answers the handshake; no heartbeat, so the client sends nothing on its own.
func (c *fakeConn) ack() {
	c.t.Helper()
	c.write(&pb.Frame{Body: &pb.Frame_HandshakeAck{HandshakeAck: &pb.HandshakeAck{
		ProtocolVersion: protocol.Version, SessionId: "s1", UserId: "alice", ServerId: "fake",
	}}})
}

// fail sends a fatal ERROR and closes the connection, as the gateway does.
func (c *fakeConn) fail(code pb.ErrorCode, message string) {
	c.t.Helper()
	c.write(&pb.Frame{Body: &pb.Frame_Error{Error: &pb.Error{Code: code, Message: message, Fatal: true}}})
	c.nc.Close()
}

// connectAsync runs client.Connect while the test plays the gateway's side of the first
// handshake; the returned function waits for Connect and fails the test on its error.
func connectAsync(t *testing.T, opts client.Options) func() *client.Client {
	t.Helper()
	type result struct {
		c   *client.Client
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := client.Connect(context.Background(), opts)
		ch <- result{c, err}
	}()
	return func() *client.Client {
		t.Helper()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatal(r.err)
			}
			t.Cleanup(func() { r.c.Close() })
			return r.c
		case <-time.After(timeout):
			t.Fatal("Connect did not return")
			return nil
		}
	}
}
