package client_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// connectWS connects to a fake WebSocket gateway and returns the client, the gateway's side
// of the connection and the causes of the client's disconnects.
func connectWS(t *testing.T, g *fakeWSGateway) (*client.Client, *fakeWSConn, chan error) {
	t.Helper()
	causes := make(chan error, 4)
	wait := connectAsync(t, client.Options{Addr: g.url(), Token: "t", NoReconnect: true,
		OnDisconnect: func(err error) { causes <- err }})
	fc := g.accept()
	fc.ack()
	return wait(), fc, causes
}

// Over ws:// the client upgrades at the URL's path and query, offers the subprotocol
// tcpgw.v2, and sends each frame as one masked binary message holding exactly that frame;
// the gateway's messages are read the same way. A ping is answered with its pong, and the
// app's Close sends close 1000.
func TestWebSocketOneFramePerMessage(t *testing.T) {
	g := newFakeWSGateway(t, false)
	c, fc, _ := connectWS(t, g)
	if fc.path != "/tcpgw?v=1" || fc.protocol != client.WebSocketSubprotocol {
		t.Fatalf("upgrade at %q with subprotocol %q, want /tcpgw?v=1 and %q", fc.path, fc.protocol, client.WebSocketSubprotocol)
	}
	resp := make(chan error, 1)
	go func() {
		r, err := c.Request(context.Background(), "svc", "m", []byte("hello"))
		if err == nil && string(r.Payload) != "world" {
			err = errors.New("response payload " + string(r.Payload))
		}
		resp <- err
	}()
	f := fc.read() // one whole frame per message, or the test fails here
	if string(f.GetRequest().GetPayload()) != "hello" {
		t.Fatalf("the gateway got %s, want the request", protocol.Kind(f))
	}
	fc.write(&pb.Frame{Seq: f.Seq, Body: &pb.Frame_Response{Response: &pb.Response{Code: pb.ErrorCode_ERROR_CODE_OK, Payload: []byte("world")}}})
	if err := recv(t, resp); err != nil {
		t.Fatal(err)
	}

	fc.send(ws.NewPingFrame([]byte("hb")))
	if m := fc.readFrame(); m.Header.OpCode != ws.OpPong || string(m.Payload) != "hb" {
		t.Fatalf("answer to a ping: opcode %v payload %q, want a pong with %q", m.Header.OpCode, m.Payload, "hb")
	}
	_ = c.Close()
	if code := fc.readClose(); code != ws.StatusNormalClosure {
		t.Fatalf("the app's close sent code %d, want 1000", code)
	}
}

// A message of the gateway's that is not exactly one binary frame ends the connection as a
// loss, with a typed cause and the close code the gateway would use for the same fault; a
// length prefix above the limit is FRAME_TOO_LARGE from the prefix alone, before the rest of
// the message (never sent here) is read.
func TestWebSocketRefusesMessagesThatAreNotOneFrame(t *testing.T) {
	ping, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Pong{Pong: &pb.Pong{}}}, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	isBadFrame := func(err error) bool { return errors.Is(err, protocol.ErrBadFrame) }
	says := func(s string) func(error) bool {
		return func(err error) bool { return err != nil && strings.Contains(err.Error(), s) }
	}
	for _, tc := range []struct {
		name  string
		send  func(*fakeWSConn)
		cause func(error) bool
		code  ws.StatusCode
	}{
		{"two frames in one message", func(c *fakeWSConn) { c.send(ws.NewBinaryFrame(append(append([]byte{}, ping...), ping...))) }, isBadFrame, ws.StatusInvalidFramePayloadData},
		{"part of a frame", func(c *fakeWSConn) { c.send(ws.NewBinaryFrame(ping[:len(ping)-1])) }, isBadFrame, ws.StatusInvalidFramePayloadData},
		{"no length prefix", func(c *fakeWSConn) { c.send(ws.NewBinaryFrame([]byte{0, 0, 1})) }, isBadFrame, ws.StatusInvalidFramePayloadData},
		{"undecodable frame", func(c *fakeWSConn) { c.send(ws.NewBinaryFrame([]byte{0, 0, 0, 2, 0xff, 0xff})) }, isBadFrame, ws.StatusInvalidFramePayloadData},
		{"text message", func(c *fakeWSConn) { c.send(ws.NewTextFrame(ping)) }, says("text message"), ws.StatusUnsupportedData},
		{"fragmented message", func(c *fakeWSConn) { c.send(ws.NewFrame(ws.OpBinary, false, ping)) }, says("fragmented"), ws.StatusUnsupportedData},
		{"masked frame", func(c *fakeWSConn) { c.send(ws.MaskFrame(ws.NewBinaryFrame(ping))) }, says("masked"), ws.StatusProtocolError},
		{"prefix above the limit", func(c *fakeWSConn) {
			// The header and the prefix of a message of 1 MiB + 4; the rest never comes.
			if err := ws.WriteHeader(c.nc, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 4 + 1<<20}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.nc.Write(binary.BigEndian.AppendUint32(nil, 1<<20)); err != nil {
				t.Fatal(err)
			}
		}, func(err error) bool { return errors.Is(err, protocol.ErrFrameTooLarge) }, ws.StatusMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeWSGateway(t, false)
			_, fc, causes := connectWS(t, g)
			tc.send(fc)
			if err := recv(t, causes); !tc.cause(err) {
				t.Fatalf("disconnect cause %v", err)
			}
			if code := fc.readClose(); code != tc.code {
				t.Fatalf("the client closed with %d, want %d", code, tc.code)
			}
		})
	}
}

// The gateway's close frame ends the stream: 1000, 1001 and 1005 (no status) like a TCP FIN
// (io.EOF), any other code as a loss naming it; the client echoes the code. A fatal ERROR
// before the close is the cause, not the close (R28).
func TestWebSocketCloseFromGateway(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before *pb.Frame
		close  []byte // the close frame's payload
		echo   ws.StatusCode
		cause  func(error) bool
	}{
		{"going away", nil, ws.NewCloseFrameBody(ws.StatusGoingAway, "draining"), ws.StatusGoingAway, func(err error) bool {
			var ce *client.WebSocketCloseError
			return errors.As(err, &ce) && ce.Code == 1001 && ce.Reason == "draining" && errors.Is(err, io.EOF)
		}},
		{"no status", nil, nil, 0, func(err error) bool {
			var ce *client.WebSocketCloseError
			return errors.As(err, &ce) && ce.Code == 1005 && errors.Is(err, io.EOF)
		}},
		{"internal error", nil, ws.NewCloseFrameBody(ws.StatusInternalServerError, "internal"), ws.StatusInternalServerError, func(err error) bool {
			var ce *client.WebSocketCloseError
			return errors.As(err, &ce) && ce.Code == 1011 && !errors.Is(err, io.EOF)
		}},
		{"fatal ERROR first", &pb.Frame{Body: &pb.Frame_Error{Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_IDLE_TIMEOUT, Fatal: true}}},
			ws.NewCloseFrameBody(ws.StatusPolicyViolation, "idle_timeout"), ws.StatusNormalClosure, func(err error) bool {
				var se *client.ServerError
				return errors.As(err, &se) && se.Code == pb.ErrorCode_ERROR_CODE_IDLE_TIMEOUT
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeWSGateway(t, false)
			_, fc, causes := connectWS(t, g)
			// One write, as the gateway's last frames go: the client may close as soon as it
			// has read the ERROR.
			var out bytes.Buffer
			if tc.before != nil {
				b, err := protocol.Append(nil, tc.before, 1<<16)
				if err != nil {
					t.Fatal(err)
				}
				_ = ws.WriteFrame(&out, ws.NewBinaryFrame(b))
			}
			_ = ws.WriteFrame(&out, ws.NewCloseFrame(tc.close))
			if _, err := fc.nc.Write(out.Bytes()); err != nil {
				t.Fatal(err)
			}
			if err := recv(t, causes); !tc.cause(err) {
				t.Fatalf("disconnect cause %v", err)
			}
			if code := fc.readClose(); code != tc.echo {
				t.Fatalf("the client's close carries %d, want %d", code, tc.echo)
			}
		})
	}
}

// An upgrade answered with another status than 101 fails Connect with a
// *WebSocketUpgradeError naming it; so does a gateway that selects no subprotocol.
func TestWebSocketUpgradeRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = nc.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			nc.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = client.Connect(ctx, client.Options{Addr: "ws://" + ln.Addr().String() + "/tcpgw", Token: "t", NoReconnect: true})
	var ue *client.WebSocketUpgradeError
	if !errors.As(err, &ue) || ue.Status != 403 {
		t.Fatalf("Connect: %v, want a WebSocketUpgradeError with status 403", err)
	}

	g := newFakeWSGateway(t, true)
	if _, err := client.Connect(ctx, client.Options{Addr: g.url(), Token: "t", NoReconnect: true}); err == nil || !strings.Contains(err.Error(), "subprotocol") {
		t.Fatalf("Connect to a gateway selecting no subprotocol: %v, want a failure naming it", err)
	}
}

// Addresses: a URL of another scheme, with a fragment or without a host, and ws:// with
// Options.TLS fail Connect before anything is dialled.
func TestWebSocketAddressRefused(t *testing.T) {
	dialled := false
	dial := func(context.Context, string, string) (net.Conn, error) {
		dialled = true
		return nil, errors.New("dialled")
	}
	for _, tc := range []struct {
		addr string
		tls  *tls.Config
	}{
		{"http://127.0.0.1:1/tcpgw", nil},
		{"ws://127.0.0.1:1/tcpgw#top", nil},
		{"ws:///tcpgw", nil},
		{"ws://127.0.0.1:1/tcpgw", &tls.Config{}},
	} {
		_, err := client.Connect(context.Background(), client.Options{Addr: tc.addr, TLS: tc.tls, Token: "t", DialContext: dial})
		if err == nil || dialled {
			t.Errorf("Connect(%q, TLS %v): %v (dialled: %v), want a refusal before dialling", tc.addr, tc.tls != nil, err, dialled)
		}
		dialled = false
	}
}
