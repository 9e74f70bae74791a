package server_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/server"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/tlstest"
	"github.com/tcpgateway/tcpgateway/test/wsclient"
)

// wsHarness is a harness that also serves listen.websocket on a loopback port.
type wsHarness struct {
	*harness
	wsAddr string
}

func startWS(t testing.TB, mutate func(*config.Config)) *wsHarness {
	t.Helper()
	h := start(t, nil, func(c *config.Config) {
		c.Listen.WebSocket = &config.ListenWebSocket{Address: "127.0.0.1:0"}
		if mutate != nil {
			mutate(c)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.ServeWebSocket(ln); err != nil {
		t.Fatal(err)
	}
	return &wsHarness{harness: h, wsAddr: ln.Addr().String()}
}

func (h *wsHarness) url() string { return "ws://" + h.wsAddr + config.DefaultWebSocketPath }

// connectWS connects the Go SDK over WebSocket.
func (h *wsHarness) connectWS(user, sessionID string, mutate ...func(*client.Options)) *client.Client {
	h.t.Helper()
	return h.connect(user, sessionID, append([]func(*client.Options){func(o *client.Options) {
		o.DialContext = wsclient.DialContext(h.url(), wsclient.Options{Protocols: []string{wsclient.Subprotocol}})
	}}, mutate...)...)
}

// rawWS is a WebSocket connection for messages the SDK would never send.
func (h *wsHarness) rawWS(o wsclient.Options) (*wsclient.Conn, *raw) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := wsclient.Dial(ctx, h.url(), o)
	if err != nil {
		h.t.Fatalf("WebSocket dial: %v", err)
	}
	h.t.Cleanup(func() { c.Conn.Close() })
	return c, &raw{t: h.t, nc: c, r: bufio.NewReader(c)}
}

// expectWSClose reads until the gateway's close frame, which must carry code and reason.
func expectWSClose(t *testing.T, c *wsclient.Conn, r *raw, code ws.StatusCode, reason string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	for range 100 {
		if _, err := r.r.ReadByte(); err != nil {
			if got, text := c.CloseStatus(); got != code || text != reason {
				t.Fatalf("closed with %d %q (%v), want %d %q", got, text, err, code, reason)
			}
			return
		}
	}
	t.Fatal("no close frame within 100 bytes")
}

// A session over WebSocket works as over TCP: the SDK's frames unchanged, one per message;
// handshake, a request to a backend, a heartbeat; the subprotocol is selected when offered.
func TestWebSocketSession(t *testing.T) {
	h := startWS(t, nil)
	c := h.connectWS("alice", "")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := c.Request(ctx, "echo", "say", []byte("over websocket"))
	if err != nil || string(resp.Payload) != "over websocket" || resp.Headers["user"] != "alice" {
		t.Fatalf("request over WebSocket: %v, %+v", err, resp)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping over WebSocket: %v", err)
	}
	wc, _ := h.rawWS(wsclient.Options{Protocols: []string{"other", wsclient.Subprotocol}})
	if wc.Protocol != wsclient.Subprotocol {
		t.Errorf("subprotocol %q selected, want %q", wc.Protocol, wsclient.Subprotocol)
	}
	if wc, _ := h.rawWS(wsclient.Options{}); wc.Protocol != "" {
		t.Errorf("subprotocol %q selected when none was offered", wc.Protocol)
	}
	eventually(t, "3 upgrades counted", func() bool { return counter(h.m.WebSocketUpgrades.WithLabelValues("ok")) == 3 })
	// The same limits: before the handshake, the handshake frame limit (8 KiB by default).
	_, r := h.rawWS(wsclient.Options{})
	r.writeBytes(append([]byte{0, 0, 0x20, 1}, make([]byte, 0x2001)...))
	r.expectError(pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE)
}

// Every message that breaks the mapping (one masked binary message, one whole frame) closes
// the connection with a typed reason: in the close frame (code and text) and in
// tcpgw_closes_total. Each row sends it, as a hostile client would.
func TestWebSocketRefusesBrokenMessages(t *testing.T) {
	h := startWS(t, nil)
	hs, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{ProtocolVersion: protocol.Version, Token: h.token("mallory")}}}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	twoFrames := append(append([]byte{}, hs...), hs...)
	short := append([]byte{}, hs[:len(hs)-1]...)
	tooLarge := make([]byte, 4+8192+1)
	binary.BigEndian.PutUint32(tooLarge, 8193)
	rsv := ws.MaskFrame(ws.NewBinaryFrame(hs))
	rsv.Header.Rsv = ws.Rsv(true, false, false)
	fragment := ws.MaskFrame(ws.NewFrame(ws.OpBinary, false, hs[:3]))
	tests := []struct {
		name   string
		frame  ws.Frame
		code   ws.StatusCode
		reason string
		err    pb.ErrorCode // the ERROR frame before the close, if any
	}{
		{"text", ws.MaskFrame(ws.NewTextFrame(hs)), 1003, "websocket_text", 0},
		{"fragmented", fragment, 1003, "websocket_fragmented", 0},
		{"continuation", ws.MaskFrame(ws.NewFrame(ws.OpContinuation, true, hs)), 1003, "websocket_fragmented", 0},
		{"unmasked", ws.NewBinaryFrame(hs), 1002, "websocket_unmasked", 0},
		{"reserved bits", rsv, 1002, "websocket_protocol", 0},
		{"reserved opcode", ws.MaskFrame(ws.NewFrame(ws.OpCode(0x3), true, hs)), 1002, "websocket_protocol", 0},
		{"control frame too long", ws.MaskFrame(ws.NewPingFrame(make([]byte, 126))), 1002, "websocket_protocol", 0},
		{"two frames in one message", ws.MaskFrame(ws.NewBinaryFrame(twoFrames)), 1007, "bad_frame", pb.ErrorCode_ERROR_CODE_BAD_FRAME},
		{"part of a frame", ws.MaskFrame(ws.NewBinaryFrame(short)), 1007, "bad_frame", pb.ErrorCode_ERROR_CODE_BAD_FRAME},
		{"no length prefix", ws.MaskFrame(ws.NewBinaryFrame([]byte{0, 0})), 1007, "bad_frame", pb.ErrorCode_ERROR_CODE_BAD_FRAME},
		{"oversized", ws.MaskFrame(ws.NewBinaryFrame(tooLarge)), 1009, "frame_too_large", pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := counter(h.m.Closes.WithLabelValues(tc.reason))
			c, r := h.rawWS(wsclient.Options{})
			if err := c.WriteFrame(tc.frame); err != nil {
				t.Fatal(err)
			}
			if tc.err != 0 {
				if f := r.read(); f.GetError().GetCode() != tc.err {
					t.Fatalf("got %v, want ERROR %s", f, tc.err)
				}
			}
			expectWSClose(t, c, r, tc.code, tc.reason)
			eventually(t, "the close counted as "+tc.reason, func() bool {
				return counter(h.m.Closes.WithLabelValues(tc.reason)) == before+1
			})
		})
	}
}

// Pings are answered with a pong carrying the same payload; a client's close frame is echoed
// and the connection ends as client_closed.
func TestWebSocketControlFrames(t *testing.T) {
	h := startWS(t, nil)
	c, _ := h.rawWS(wsclient.Options{})
	if err := c.WriteFrame(ws.MaskFrame(ws.NewPingFrame([]byte("are you there")))); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	f, err := readControl(c.Conn)
	if err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "are you there" {
		t.Fatalf("ping answered with %+v, %v; want a pong with the same payload", f.Header, err)
	}
	before := counter(h.m.Closes.WithLabelValues("client_closed"))
	if err := c.WriteFrame(ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(4000, "bye")))); err != nil {
		t.Fatal(err)
	}
	f, err = readControl(c.Conn)
	if err != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("close answered with %+v, %v; want a close", f.Header, err)
	}
	if code, _ := ws.ParseCloseFrameData(f.Payload); code != 4000 {
		t.Errorf("close echoed with code %d, want the client's 4000", code)
	}
	if _, err := c.Conn.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the close handshake: %v, want EOF", err)
	}
	eventually(t, "client_closed counted", func() bool {
		return counter(h.m.Closes.WithLabelValues("client_closed")) == before+1 && h.srv.Connections() == 0
	})
}

// readControl reads one frame of at most a control frame's size.
func readControl(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil || h.Length > ws.MaxControlFramePayloadSize {
		return ws.Frame{Header: h}, err
	}
	p := make([]byte, h.Length)
	_, err = io.ReadFull(r, p)
	return ws.Frame{Header: h, Payload: p}, err
}

// httpExchange sends request on a new TCP connection and returns the answer's status and
// body, and whether the gateway then closed the connection.
func httpExchange(t *testing.T, addr, request string) (int, string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(wait))
	if _, err := nc.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", strings.SplitN(request, "\r\n", 2)[0], err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, ""
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the answer: %v, want the connection closed", err)
	}
	return resp.StatusCode, string(body)
}

// The upgrade is bounded and every refusal is an HTTP answer saying why: a request that is no
// upgrade 400, another path 404, an Origin not allowed 403, a request too large 431; a
// client that says nothing is closed at limits.handshakeTimeout. Each counted by result.
func TestWebSocketUpgradeRefusals(t *testing.T) {
	h := startWS(t, func(c *config.Config) {
		c.Listen.WebSocket.AllowedOrigins = []string{"https://app.example.com"}
		c.Limits.HandshakeTimeout = config.Duration{Duration: 500 * time.Millisecond}
	})
	upgrade := func(path string, extra ...string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + strings.Join(extra, "") + "\r\n"
	}
	tests := []struct {
		name    string
		request string
		status  int
		result  string
		body    string
	}{
		{"plain GET", "GET /tcpgw HTTP/1.1\r\nHost: gw\r\n\r\n", 400, "not_websocket", "Upgrade"},
		{"POST", "POST /tcpgw HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", 405, "not_websocket", "method"},
		{"other path", upgrade("/other"), 404, "not_found", "this port serves WebSocket at /tcpgw"},
		{"origin not allowed", upgrade("/tcpgw", "Origin: https://evil.example\r\n"), 403, "forbidden_origin", "allowedOrigins"},
		{"not HTTP", "\x00\x00\x00\x10hello\r\n\r\n", 400, "failed", ""},
		{"too large", upgrade("/tcpgw", "Cookie: "+strings.Repeat("a", 20<<10)+"\r\n"), 431, "too_large", ""},
		{"allowed origin, any case", upgrade("/tcpgw?v=2", "Origin: HTTPS://App.Example.com\r\n"), 101, "ok", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := counter(h.m.WebSocketUpgrades.WithLabelValues(tc.result))
			status, body := httpExchange(t, h.wsAddr, tc.request)
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("answered %d %q, want %d containing %q", status, body, tc.status, tc.body)
			}
			eventually(t, "upgrades{"+tc.result+"} counted", func() bool {
				return counter(h.m.WebSocketUpgrades.WithLabelValues(tc.result)) == before+1
			})
		})
	}

	// A browser of an allowed origin, and a client without Origin (not a browser), connect.
	h.rawWS(wsclient.Options{Origin: "https://app.example.com"})
	h.rawWS(wsclient.Options{})

	// A client that opens the connection and says nothing is closed at the deadline.
	nc, err := net.DialTimeout("tcp", h.wsAddr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	_ = nc.SetReadDeadline(time.Now().Add(wait))
	if n, err := nc.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("a silent client read %d bytes, %v: want the connection closed", n, err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a silent client was closed after %v, want about the 500ms handshake timeout", took)
	}
	eventually(t, "the timeout counted", func() bool {
		return counter(h.m.WebSocketUpgrades.WithLabelValues("timeout")) == 1
	})
}

// Drain over WebSocket: GOAWAY (with a resume token) as a binary message, then a close frame
// 1001 "shutdown" once the flush phase ended, then the TCP close.
func TestWebSocketDrainGoAwayThenClose(t *testing.T) {
	h := startWS(t, nil)
	c, r := h.rawWS(wsclient.Options{})
	r.handshake(h.token("dora"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = h.srv.Shutdown(ctx)
	}()
	f := r.read()
	if g := f.GetGoaway(); g == nil || g.Reason != pb.GoAway_REASON_DRAINING || g.ResumeToken == "" {
		t.Fatalf("got %v, want GOAWAY DRAINING with a resume token", f)
	}
	expectWSClose(t, c, r, 1001, "shutdown")
	<-done
}

// A connection arriving while the gateway refuses new ones (drain) is upgraded, told GOAWAY and
// closed with 1001 "draining".
func TestWebSocketRefusedWhileDraining(t *testing.T) {
	h := startWS(t, nil)
	// A session that keeps its connection after GOAWAY holds the drain in its flush phase,
	// listener open, until the test ends.
	_, held := h.rawWS(wsclient.Options{})
	held.handshake(h.token("held"))
	refusing := make(chan struct{})
	go h.srv.Drain(context.Background(), config.Drain{HardDeadline: config.Duration{Duration: wait},
		FlushTimeout: config.Duration{Duration: wait}, SpreadWindow: config.Duration{Duration: time.Millisecond}},
		func(p server.DrainPhase) {
			if p == server.PhaseDeregistered {
				close(refusing)
			}
		})
	<-refusing
	c, r := h.rawWS(wsclient.Options{})
	if f := r.read(); f.GetGoaway().GetReason() != pb.GoAway_REASON_DRAINING {
		t.Fatalf("got %v, want GOAWAY DRAINING", f)
	}
	expectWSClose(t, c, r, 1001, "draining")
	if got := counter(h.m.ConnectionsRefused.WithLabelValues("draining")); got != 1 {
		t.Errorf("refused{draining} = %v, want 1", got)
	}
}

// wss:// (listen.websocket.tls): the TLS handshake, then the same WebSocket session; refusals
// keep their close codes inside TLS, and a plaintext WebSocket client of the wss port is counted
// as not TLS.
func TestWebSocketOverTLS(t *testing.T) {
	ca, dir := tlstest.Serving(t, "tcpgateway websocket test CA")
	h := startWS(t, func(c *config.Config) {
		c.Listen.WebSocket.TLS = &config.ListenTLS{CertFile: dir.CertFile(), KeyFile: dir.KeyFile()}
	})
	url := "wss://" + h.wsAddr + config.DefaultWebSocketPath
	c := h.connect("alice", "", func(o *client.Options) {
		o.DialContext = wsclient.DialContext(url, wsclient.Options{TLS: ca.ClientConfig()})
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := c.Request(ctx, "echo", "say", []byte("over wss"))
	if err != nil || string(resp.Payload) != "over wss" {
		t.Fatalf("request over wss: %v, %+v", err, resp)
	}

	wc, err := wsclient.Dial(ctx, url, wsclient.Options{TLS: ca.ClientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Conn.Close()
	if err := wc.WriteFrame(ws.MaskFrame(ws.NewTextFrame([]byte("hello")))); err != nil {
		t.Fatal(err)
	}
	expectWSClose(t, wc, &raw{t: t, nc: wc, r: bufio.NewReader(wc)}, 1003, "websocket_text")

	if _, err := wsclient.Dial(ctx, h.url(), wsclient.Options{}); err == nil {
		t.Fatal("a plaintext WebSocket client was upgraded on the wss port")
	}
	eventually(t, "TLS handshakes counted", func() bool {
		return counter(h.m.TLSHandshakes.WithLabelValues("ok")) == 2 && counter(h.m.TLSHandshakes.WithLabelValues("not_tls")) == 1 &&
			counter(h.m.WebSocketUpgrades.WithLabelValues("ok")) == 2
	})
}

// The limits are the TCP port's: a WebSocket connection beyond its address's limit is upgraded
// (plaintext) to read the ERROR, then closed with 1013 "address_limit".
func TestWebSocketRefusedByAddressLimit(t *testing.T) {
	h := startWS(t, func(c *config.Config) { c.Limits.PerAddress.MaxConnections = 1 })
	_, first := h.rawWS(wsclient.Options{})
	first.handshake(h.token("one"))
	c, r := h.rawWS(wsclient.Options{})
	if f := r.read(); f.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_ADDRESS_LIMIT {
		t.Fatalf("got %v, want ERROR ADDRESS_LIMIT", f)
	}
	expectWSClose(t, c, r, 1013, "address_limit")
	if got := counter(h.m.ConnectionsRefused.WithLabelValues("address_limit")); got != 1 {
		t.Errorf("refused{address_limit} = %v, want 1", got)
	}
}
