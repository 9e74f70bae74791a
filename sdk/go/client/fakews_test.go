package client_test

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// fakeWSGateway is a scripted gateway serving WebSocket on a loopback port (gobwas/ws's
// upgrader, as the real one): tests write messages a real gateway never sends (a text message,
// two frames in one, a masked frame) and check what the SDK sends, message by message.
type fakeWSGateway struct {
	t     *testing.T
	ln    net.Listener
	conns chan *fakeWSConn
}

type fakeWSConn struct {
	t        *testing.T
	nc       net.Conn
	r        *bufio.Reader
	path     string // the upgrade request's path
	protocol string // the subprotocol selected
}

// newFakeWSGateway upgrades every connection, selecting the subprotocol tcpgw.v2 when offered
// unless selectNone.
func newFakeWSGateway(t *testing.T, selectNone bool) *fakeWSGateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeWSGateway{t: t, ln: ln, conns: make(chan *fakeWSConn, 16)}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c := &fakeWSConn{t: t, nc: nc, r: bufio.NewReader(nc)}
			u := ws.Upgrader{
				OnRequest: func(uri []byte) error { c.path = string(uri); return nil },
				Protocol:  func(p []byte) bool { return !selectNone && string(p) == "tcpgw.v2" },
			}
			hs, err := u.Upgrade(nc)
			if err != nil {
				nc.Close()
				continue
			}
			c.protocol = hs.Protocol
			g.conns <- c
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return g
}

func (g *fakeWSGateway) url() string { return "ws://" + g.ln.Addr().String() + "/tcpgw?v=1" }

func (g *fakeWSGateway) accept() *fakeWSConn {
	g.t.Helper()
	select {
	case c := <-g.conns:
		g.t.Cleanup(func() { c.nc.Close() })
		return c
	case <-time.After(timeout):
		g.t.Fatal("no WebSocket connection from the client")
		return nil
	}
}

// readFrame reads the client's next WebSocket frame, unmasked; it must be masked.
func (c *fakeWSConn) readFrame() ws.Frame {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	h, err := ws.ReadHeader(c.r)
	if err != nil {
		c.t.Fatalf("reading the client's WebSocket frame: %v", err)
	}
	if h.Length > 1<<17 {
		c.t.Fatalf("the client sent a frame of %d bytes", h.Length)
	}
	if !h.Masked {
		c.t.Fatalf("the client sent an unmasked %v frame", h.OpCode)
	}
	f := ws.Frame{Header: h, Payload: make([]byte, h.Length)}
	if _, err := io.ReadFull(c.r, f.Payload); err != nil {
		c.t.Fatalf("reading the client's WebSocket frame: %v", err)
	}
	return ws.UnmaskFrameInPlace(f)
}

// read reads the client's next message, which must be binary and exactly one frame.
func (c *fakeWSConn) read() *pb.Frame {
	c.t.Helper()
	m := c.readFrame()
	if m.Header.OpCode != ws.OpBinary || !m.Header.Fin {
		c.t.Fatalf("the client sent opcode %v fin %v, want one whole binary message", m.Header.OpCode, m.Header.Fin)
	}
	f, err := protocol.DecodeMessage(m.Payload, 1<<16)
	if err != nil {
		c.t.Fatalf("the client's message of %d bytes: %v", len(m.Payload), err)
	}
	return f
}

// readClose reads the client's frames up to its close frame and returns its code.
func (c *fakeWSConn) readClose() ws.StatusCode {
	c.t.Helper()
	for range 10 {
		if m := c.readFrame(); m.Header.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(m.Payload)
			return code
		}
	}
	c.t.Fatal("no close frame among the client's next 10 frames")
	return 0
}

// send writes one WebSocket frame of the gateway's, as given.
func (c *fakeWSConn) send(f ws.Frame) {
	c.t.Helper()
	if err := ws.WriteFrame(c.nc, f); err != nil {
		c.t.Fatalf("writing a WebSocket frame: %v", err)
	}
}

// write sends f as one binary message, as the gateway does.
func (c *fakeWSConn) write(f *pb.Frame) {
	c.t.Helper()
	b, err := protocol.Append(nil, f, 1<<16)
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(ws.NewBinaryFrame(b))
}

// ack reads the client's HANDSHAKE and answers it (no heartbeat: the client sends nothing on
// its own).
func (c *fakeWSConn) ack() {
	c.t.Helper()
	if c.read().GetHandshake() == nil {
		c.t.Fatal("the first message is not a HANDSHAKE")
	}
	c.write(&pb.Frame{Body: &pb.Frame_HandshakeAck{HandshakeAck: &pb.HandshakeAck{
		ProtocolVersion: protocol.Version, SessionId: "s1", UserId: "alice", ServerId: "fake",
	}}})
}
