package server_test

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/wsclient"
)

// Regression tests for what FuzzWebSocket found.

// A client that half-closes right after a message the gateway refuses still gets the ERROR and
// the close frame that say why (before the fix the reader saw the FIN, closed the connection and
// dropped them).
func TestWebSocketHalfCloseAfterRefusedMessage(t *testing.T) {
	h := startWS(t, nil)
	for _, tc := range []struct {
		name   string
		frame  ws.Frame
		code   ws.StatusCode
		reason string
		err    pb.ErrorCode
	}{
		{"text", ws.MaskFrame(ws.NewTextFrame([]byte("hello"))), 1003, "websocket_text", 0},
		{"reserved opcode", ws.MaskFrame(ws.NewFrame(ws.OpCode(0x3), true, nil)), 1002, "websocket_protocol", 0},
		{"no length prefix", ws.MaskFrame(ws.NewBinaryFrame([]byte{0, 0})), 1007, "bad_frame", pb.ErrorCode_ERROR_CODE_BAD_FRAME},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 5 { // the FIN raced the gateway's last frames
				c, r := h.rawWS(wsclient.Options{})
				if err := c.WriteFrame(tc.frame); err != nil {
					t.Fatal(err)
				}
				if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				if tc.err != 0 {
					if f := r.read(); f.GetError().GetCode() != tc.err {
						t.Fatalf("got %v, want ERROR %s", f, tc.err)
					}
				}
				expectWSClose(t, c, r, tc.code, tc.reason)
			}
		})
	}
}

// A close frame whose payload no endpoint may send is a protocol error: the gateway does not
// echo a 1005 or 999 (RFC 6455 7.4), and closes with 1002 websocket_protocol.
func TestWebSocketRefusesInvalidCloseFrames(t *testing.T) {
	h := startWS(t, nil)
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"one byte", []byte{3}},
		{"code 1005", ws.NewCloseFrameBody(1005, "")},
		{"code 999", ws.NewCloseFrameBody(999, "")},
		{"code 1004", ws.NewCloseFrameBody(1004, "")},
		{"reason not UTF-8", ws.NewCloseFrameBody(1000, "\xff\xfe")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counter(h.m.Closes.WithLabelValues("websocket_protocol"))
			c, r := h.rawWS(wsclient.Options{})
			if err := c.WriteFrame(ws.MaskFrame(ws.NewCloseFrame(tc.payload))); err != nil {
				t.Fatal(err)
			}
			expectWSClose(t, c, r, 1002, "websocket_protocol")
			eventually(t, "the close counted as websocket_protocol", func() bool {
				return counter(h.m.Closes.WithLabelValues("websocket_protocol")) == before+1
			})
		})
	}
}

// Bytes sent with the upgrade request, before the 101 (RFC 6455 4.1 forbids it), are consumed
// by the upgrader: the gateway closes with 1002 websocket_protocol instead of reading the
// stream from wherever they were cut (before the fix a HANDSHAKE sent with the request was lost
// and the connection waited for the handshake timeout).
func TestWebSocketRefusesBytesBeforeUpgradeAnswer(t *testing.T) {
	h := startWS(t, nil)
	hs, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{ProtocolVersion: protocol.Version, Token: h.token("eager")}}}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := ws.CompileFrame(ws.MaskFrame(ws.NewBinaryFrame(hs)))
	if err != nil {
		t.Fatal(err)
	}
	for _, request := range []string{wsUpgradeRequest("/tcpgw"), "GET /tcpgw HTTP/1.1\nHost: gw\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n"} {
		nc, err := net.DialTimeout("tcp", h.wsAddr, wait)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(wait))
		if _, err := nc.Write(append([]byte(request), msg...)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(nc)
		if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("answered %v, %v; want 101", resp, err)
		}
		f, err := readControl(br)
		if code, reason := ws.ParseCloseFrameData(f.Payload); err != nil || f.Header.OpCode != ws.OpClose || code != 1002 || reason != "websocket_protocol" {
			t.Fatalf("got %+v %q, %v; want close 1002 websocket_protocol", f.Header, f.Payload, err)
		}
	}
	if got := counter(h.m.Handshakes.WithLabelValues("ok")); got != 0 {
		t.Errorf("%v sessions authenticated from bytes sent before the 101", got)
	}
}
