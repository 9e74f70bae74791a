package server_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// What FuzzWebSocket's mode selects: the first bytes the client sends before the fuzzed ones,
// and whether it half-closes after them.
const (
	wsFuzzRaw       = 0 // the fuzzed bytes are the whole connection, the upgrade request included
	wsFuzzUpgraded  = 1 // a valid upgrade, then the fuzzed bytes as WebSocket frames
	wsFuzzHandshake = 2 // a valid upgrade and a valid HANDSHAKE message, then the fuzzed bytes
	wsFuzzModes     = 3
	// wsFuzzHold: no half-close after the bytes (ignored after a HANDSHAKE). The client closes
	// its side only once the session is authenticated (HANDSHAKE_ACK), the gateway refused the
	// upgrade or sent its close frame: until then the gateway alone must end the connection,
	// within limits.handshakeTimeout.
	wsFuzzHold = 4
)

// wsUpgradeRequest is an upgrade request for path with extra header lines.
func wsUpgradeRequest(path string, extra ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + strings.Join(extra, "") + "\r\n"
}

// wsFuzzUpgrade is a valid upgrade request for the default path.
var wsFuzzUpgrade = wsUpgradeRequest("/tcpgw")

// wsFuzzCloseCodes are the codes of docs/protocol.md#websocket-close-codes by the reason text
// the gateway's close frame carries.
var wsFuzzCloseCodes = map[string]ws.StatusCode{
	"client_closed": 1000,
	"draining":      1001, "shutdown": 1001, "replaced": 1001, "rebalance": 1001,
	"websocket_unmasked": 1002, "websocket_protocol": 1002,
	"websocket_text": 1003, "websocket_fragmented": 1003,
	"bad_frame":          1007,
	"handshake_required": 1008, "handshake_timeout": 1008, "unauthenticated": 1008, "unsupported_version": 1008,
	"idle_timeout": 1008, "slow_consumer": 1008, "token_expired": 1008, "write_failed": 1008,
	"frame_too_large": 1009,
	"server_full":     1013, "address_limit": 1013,
}

// The HTTP answers docs/protocol.md#websocket lists for a refused upgrade.
var wsFuzzRefusals = map[int]bool{400: true, 403: true, 404: true, 405: true, 426: true, 431: true, 505: true}

// FuzzWebSocket connects to a real WebSocket listener on loopback and sends arbitrary bytes:
// as the upgrade request itself, or as WebSocket frames (masked or not, any opcode, length and
// bits) after a valid upgrade, optionally after a valid HANDSHAKE message so that the
// authenticated session's reader is fuzzed too. Whatever the bytes: the gateway answers the
// upgrade with 101 or one of its documented refusals, or nothing; after 101 its frames are
// final, unmasked binary messages of exactly one protocol frame (never ERROR INTERNAL, only
// HANDSHAKE_ACK, ERROR or GOAWAY first, an ACK only for the one user with a signed token),
// pongs and at most one close frame, last, with the documented code of its reason; a
// connection the gateway closes for a reason of its own gets that close frame (and, for
// bad_frame and frame_too_large, an ERROR first); it ends the connection within the handshake
// timeout and linger bounds; each connection is counted once in
// tcpgw_websocket_upgrades_total and tcpgw_closes_total (never as internal), at most one
// session is authenticated, and the goroutines return to their number before the fuzzing
// (give or take the HTTP client's idle connections to the echo backend). A panic in the
// reader ends the process: a failure.
func FuzzWebSocket(f *testing.F) {
	const handshakeTimeout = 500 * time.Millisecond
	h := startWS(f, func(c *config.Config) {
		c.Listen.WebSocket.AllowedOrigins = []string{"https://app.example.com"}
		c.Limits.MaxFrameBytes = 4096
		c.Limits.HandshakeTimeout = config.Duration{Duration: handshakeTimeout}
		c.Limits.PerAddress.HandshakesPerSecond = 1e9 // every execution comes from 127.0.0.1
	})
	mask := func(fr ws.Frame) ws.Frame { return ws.MaskFrameWith(fr, [4]byte{0x12, 0x34, 0x56, 0x78}) }
	compile := func(frames ...ws.Frame) []byte {
		var b []byte
		for _, fr := range frames {
			c, err := ws.CompileFrame(fr)
			if err != nil {
				f.Fatal(err)
			}
			b = append(b, c...)
		}
		return b
	}
	encode := func(frames ...*pb.Frame) []byte {
		var b []byte
		for _, fr := range frames {
			var err error
			if b, err = protocol.Append(b, fr, 1<<20); err != nil {
				f.Fatal(err)
			}
		}
		return b
	}
	hs := encode(&pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{ProtocolVersion: protocol.Version, Token: h.token(fuzzUser), DeviceId: "d", ClientVersion: "fuzz/1"}}})
	hsMsg := compile(mask(ws.NewBinaryFrame(hs)))
	ping := encode(&pb.Frame{Seq: 1, Body: &pb.Frame_Ping{Ping: &pb.Ping{ClientTimeMs: 1}}})
	request := encode(&pb.Frame{Seq: 2, Body: &pb.Frame_Request{Request: &pb.Request{Service: "echo", Method: "m", Payload: []byte("x")}}})
	tooLarge := make([]byte, 4+8192+1)
	binary.BigEndian.PutUint32(tooLarge, 8193)
	rsv := mask(ws.NewBinaryFrame(hs))
	rsv.Header.Rsv = ws.Rsv(true, false, false)

	// The rows of TestWebSocketRefusesBrokenMessages and TestWebSocketControlFrames, and a few
	// well-formed conversations, each after an upgrade and after an upgrade and a handshake.
	frames := [][]byte{
		compile(mask(ws.NewTextFrame(hs))),
		compile(mask(ws.NewFrame(ws.OpBinary, false, hs[:3])), mask(ws.NewFrame(ws.OpContinuation, true, hs[3:]))),
		compile(mask(ws.NewFrame(ws.OpContinuation, true, hs))),
		compile(ws.NewBinaryFrame(hs)),
		compile(rsv),
		compile(mask(ws.NewFrame(ws.OpCode(0x3), true, hs))),
		compile(mask(ws.NewPingFrame(make([]byte, 126)))),
		compile(mask(ws.NewFrame(ws.OpPing, false, []byte("p")))),
		compile(mask(ws.NewBinaryFrame(append(append([]byte{}, hs...), hs...)))),
		compile(mask(ws.NewBinaryFrame(hs[:len(hs)-1]))),
		compile(mask(ws.NewBinaryFrame([]byte{0, 0}))),
		compile(mask(ws.NewBinaryFrame(tooLarge))),
		compile(mask(ws.NewPingFrame([]byte("are you there")))),
		compile(mask(ws.NewPongFrame(nil))),
		compile(mask(ws.NewCloseFrame(ws.NewCloseFrameBody(4000, "bye")))),
		compile(mask(ws.NewCloseFrame(nil))),
		compile(mask(ws.NewCloseFrame([]byte{3}))),
		compile(mask(ws.NewCloseFrame(ws.NewCloseFrameBody(1005, "")))),
		compile(mask(ws.NewCloseFrame(ws.NewCloseFrameBody(999, "")))),
		compile(mask(ws.NewCloseFrame(ws.NewCloseFrameBody(1000, "\xff\xfe")))),
		compile(mask(ws.NewBinaryFrame(ping)), mask(ws.NewBinaryFrame(request))),
		compile(mask(ws.NewBinaryFrame(request)), mask(ws.NewCloseFrame(ws.NewCloseFrameBody(1000, "")))),
		hsMsg,
		{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, // a 63-bit length
		{0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4, 5},                                  // a 16-bit length that is short
		{0x88, 0x80},                                                             // a truncated header
	}
	for _, b := range frames {
		for _, mode := range []uint8{wsFuzzUpgraded, wsFuzzHandshake} {
			f.Add(mode, b)
		}
		f.Add(uint8(wsFuzzHandshake|wsFuzzHold), b)
		f.Add(uint8(wsFuzzRaw), append([]byte(wsFuzzUpgrade), b...)) // bytes before the 101
	}
	// The rows of TestWebSocketUpgradeRefusals, and upgrades the gateway accepts.
	upgrade := wsUpgradeRequest
	for _, req := range []string{
		"GET /tcpgw HTTP/1.1\r\nHost: gw\r\n\r\n",
		"POST /tcpgw HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n",
		upgrade("/other"),
		upgrade("/tcpgw", "Origin: https://evil.example\r\n"),
		"\x00\x00\x00\x10hello\r\n\r\n",
		upgrade("/tcpgw", "Cookie: "+strings.Repeat("a", 17<<10)+"\r\n"),
		upgrade("/tcpgw?v=2", "Origin: HTTPS://App.Example.com\r\n"),
		upgrade("/tcpgw", "Sec-WebSocket-Protocol: other, tcpgw.v2\r\n"),
		strings.Replace(wsFuzzUpgrade, "Version: 13", "Version: 12", 1),
		strings.Replace(wsFuzzUpgrade, "HTTP/1.1", "HTTP/1.0", 1),
		wsFuzzUpgrade[:40],
		upgrade("/tcpgw") + string(hsMsg),
	} {
		f.Add(uint8(wsFuzzRaw), []byte(req))
		f.Add(uint8(wsFuzzRaw|wsFuzzHold), []byte(req))
	}

	baseGoroutines := runtime.NumGoroutine()
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		kind := (mode &^ wsFuzzHold) % wsFuzzModes
		// An authenticated session lasts until idleTimeout: the client half-closes after its
		// bytes whatever mode says.
		hold := mode&wsFuzzHold != 0 && kind != wsFuzzHandshake
		upgrades, closes := total(h.m.WebSocketUpgrades), total(h.m.Closes)
		acksBefore := counter(h.m.Handshakes.WithLabelValues("ok"))
		closesBefore := closeCounts(h.m.Closes)

		nc, err := net.DialTimeout("tcp", h.wsAddr, wait)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		start := time.Now()
		// Bound: the handshake timeout, the gateway's 2 s linger after its close, slack.
		_ = nc.SetReadDeadline(start.Add(handshakeTimeout + 2*time.Second + 2*time.Second))
		r := bufio.NewReader(nc)
		halfClosed := false
		halfClose := func() {
			if !halfClosed {
				halfClosed = true
				_ = nc.(*net.TCPConn).CloseWrite()
			}
		}
		ended := func(err error, what string) {
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
			case errors.As(err, &ne) && ne.Timeout():
				t.Fatalf("the gateway held the connection for %v (%s; hold %v, half-closed %v)", time.Since(start).Round(time.Millisecond), what, hold, halfClosed)
			default:
				t.Fatalf("%s: %v", what, err)
			}
		}

		// The client's valid prefix, each part after the gateway's answer to the one before
		// (RFC 6455 4.1: nothing before the 101), then the fuzzed bytes.
		var ans wsFuzzAnswers
		upgraded := false
		if kind != wsFuzzRaw {
			if _, err := nc.Write([]byte(wsFuzzUpgrade)); err != nil {
				t.Fatal(err)
			}
			if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("a valid upgrade answered %v, %v", resp, err)
			}
			upgraded = true
		}
		if kind == wsFuzzHandshake {
			if _, err := nc.Write(hsMsg); err != nil {
				t.Fatal(err)
			}
			if fr := readWSFuzzFrame(t, r); fr.GetHandshakeAck().GetUserId() != fuzzUser {
				t.Fatalf("a valid HANDSHAKE answered %v", fr)
			}
			ans.acks = 1
		}
		if len(data) > 0 {
			_, _ = nc.Write(data) // the gateway may close before reading everything
		}
		if !hold {
			halfClose()
		}
		if !upgraded {
			resp, err := http.ReadResponse(r, nil)
			switch {
			case err != nil:
				ended(err, "reading the upgrade's answer")
			case resp.StatusCode != http.StatusSwitchingProtocols:
				if !wsFuzzRefusals[resp.StatusCode] {
					t.Fatalf("upgrade answered %s: not a documented refusal", resp.Status)
				}
				halfClose() // as a client does once refused; the gateway waits 2 s at most
				n, err := io.Copy(io.Discard, io.LimitReader(r, 1<<16))
				if n == 1<<16 {
					t.Fatal("more than 64 KiB after a refusal")
				}
				if err != nil {
					ended(err, "after the refusal "+resp.Status)
				}
			default:
				upgraded = true
			}
		}
		if upgraded {
			ans = readWSFuzzAnswers(t, r, ans, halfClose, ended)
		}

		eventually(t, "the connection closed and counted once", func() bool {
			return h.srv.Connections() == 0 && total(h.m.WebSocketUpgrades) == upgrades+1 && total(h.m.Closes) == closes+1
		})
		// At most one session per connection, and every ACK is one (a client that half-closes
		// at once may not get the ACK of a session that was authenticated).
		if got := counter(h.m.Handshakes.WithLabelValues("ok")) - acksBefore; got > 1 || got < float64(ans.acks) {
			t.Fatalf("%v sessions authenticated, %d HANDSHAKE_ACK answered", got, ans.acks)
		}
		var counted string
		for reason, v := range closeCounts(h.m.Closes) {
			if v != closesBefore[reason] {
				counted = reason
			}
		}
		switch {
		case counted == "internal":
			t.Fatal("a connection closed as internal: the gateway failed on this input")
		case !upgraded || counted == "client_closed":
		case !ans.closed || ans.reason != counted:
			// The gateway closed it for a reason of its own: its close frame says which.
			t.Fatalf("closed as %s, but the close frame received was %v %q", counted, ans.closed, ans.reason)
		case (counted == "bad_frame" || counted == "frame_too_large") && ans.lastError == 0:
			t.Fatalf("closed as %s without an ERROR first", counted)
		}
		eventually(t, "the gateway's goroutines back to their number before the fuzzing", func() bool {
			return runtime.NumGoroutine() <= baseGoroutines+10
		})
	})
}

// wsFuzzAnswers is what readWSFuzzAnswers saw.
type wsFuzzAnswers struct {
	acks      int          // HANDSHAKE_ACKs
	lastError pb.ErrorCode // the code of the last ERROR frame, 0 for none
	closed    bool         // a close frame came
	reason    string       // its reason text
}

// readWSFuzzAnswers reads what the gateway sends after its 101 until it closes and checks it.
func readWSFuzzAnswers(t *testing.T, r *bufio.Reader, ans wsFuzzAnswers, halfClose func(), ended func(error, string)) wsFuzzAnswers {
	t.Helper()
	var got []*pb.Frame
	handshaken := ans.acks > 0
	closed := false
	for n := 0; ; n++ {
		if n > 100 {
			t.Fatal("more than 100 frames from the gateway")
		}
		hd, err := ws.ReadHeader(r)
		if err != nil {
			ended(err, "reading a frame header")
			break
		}
		switch {
		case closed:
			t.Fatalf("a frame (opcode %d) after the close frame", hd.OpCode)
		case hd.Masked || hd.Rsv != 0 || !hd.Fin:
			t.Fatalf("frame header %+v: the gateway never masks, fragments or sets reserved bits", hd)
		case hd.Length > 1<<20:
			t.Fatalf("a frame of %d bytes", hd.Length)
		}
		p := make([]byte, hd.Length)
		if _, err := io.ReadFull(r, p); err != nil {
			ended(err, "reading a frame's payload")
			break
		}
		switch hd.OpCode {
		case ws.OpBinary:
			fr, err := protocol.DecodeMessage(p, 1<<20)
			if err != nil {
				t.Fatalf("a binary message that is not one protocol frame: %v", err)
			}
			got = append(got, fr)
			if fr.GetHandshakeAck() != nil {
				halfClose() // authenticated: the session would otherwise last until idleTimeout
			}
		case ws.OpPong:
			if hd.Length > ws.MaxControlFramePayloadSize {
				t.Fatalf("a pong of %d bytes", hd.Length)
			}
		case ws.OpClose:
			closed = true
			code, reason := ws.ParseCloseFrameData(p)
			ans.closed, ans.reason = true, reason
			if want, ok := wsFuzzCloseCodes[reason]; ok && code != want {
				t.Fatalf("close %d %q: %q has code %d", code, reason, reason, want)
			}
			if _, ok := wsFuzzCloseCodes[reason]; !ok && reason != "" {
				t.Fatalf("close %d %q: not a documented reason", code, reason)
			}
			// An echo of the client's close carries the client's code, which must be one an
			// endpoint may send (RFC 6455 7.4).
			if err := ws.CheckCloseFrameData(code, reason); err != nil {
				t.Fatalf("close %d %q: %v", code, reason, err)
			}
			halfClose()
		default:
			t.Fatalf("a frame of opcode %d from the gateway", hd.OpCode)
		}
	}
	for i, fr := range got {
		switch {
		case fr.GetError().GetCode() == pb.ErrorCode_ERROR_CODE_INTERNAL:
			t.Fatalf("ERROR INTERNAL (%s): the gateway failed on this input", fr.GetError().GetMessage())
		case !handshaken && i == 0 && fr.GetHandshakeAck() == nil && fr.GetError() == nil && fr.GetGoaway() == nil:
			t.Fatalf("first answer %s: only HANDSHAKE_ACK, ERROR or GOAWAY may come before a handshake", protocol.Kind(fr))
		case (handshaken || i > 0) && fr.GetHandshakeAck() != nil:
			t.Fatalf("a second HANDSHAKE_ACK")
		case fr.GetHandshakeAck() != nil && fr.GetHandshakeAck().GetUserId() != fuzzUser:
			t.Fatalf("HANDSHAKE_ACK for user %q: only %q has a signed token", fr.GetHandshakeAck().GetUserId(), fuzzUser)
		case fr.GetError().GetFatal() && i != len(got)-1:
			t.Fatalf("%d frames after a fatal ERROR %s", len(got)-1-i, fr.GetError().GetCode())
		}
		if fr.GetHandshakeAck() != nil {
			ans.acks++
		}
		if fr.GetError() != nil {
			ans.lastError = fr.GetError().GetCode()
		}
	}
	return ans
}

// readWSFuzzFrame reads one binary message of one protocol frame.
func readWSFuzzFrame(t *testing.T, r *bufio.Reader) *pb.Frame {
	t.Helper()
	hd, err := ws.ReadHeader(r)
	if err != nil || hd.OpCode != ws.OpBinary || hd.Length > 1<<20 {
		t.Fatalf("frame header %+v, %v; want a binary message", hd, err)
	}
	p := make([]byte, hd.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatal(err)
	}
	fr, err := protocol.DecodeMessage(p, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return fr
}

// total is the sum of a counter vector over its labels.
func total(c *prometheus.CounterVec) float64 {
	var sum float64
	for _, v := range closeCounts(c) {
		sum += v
	}
	return sum
}

// closeCounts is a counter vector's values by their first label's value.
func closeCounts(c *prometheus.CounterVec) map[string]float64 {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	out := map[string]float64{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err == nil && len(d.GetLabel()) > 0 {
			out[d.GetLabel()[0].GetValue()] += d.GetCounter().GetValue()
		}
	}
	return out
}
