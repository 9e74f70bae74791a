package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// The ack names the token's user, a session id the gateway assigned (kept by the SDK), the
// gateway, protocol 2 and the limits; the backend sees the same identity on a request.
func handshakeAndIdentity(t *testing.T, s *suite) {
	f := s.shared
	st := s.connect(t, "", f.Addr(), f.Token("alice-hs"), nil)
	a := st.Ack
	if a.UserID != "alice-hs" || a.ProtocolVersion != 2 || len(a.SessionID) != 22 ||
		!strings.HasPrefix(a.ServerID, "conf-") || a.HeartbeatIntervalMs != 2000 || a.IdleTimeoutMs != 5000 ||
		a.MaxFrameBytes != 65536 || a.TokenExpiresAtMs == 0 || a.Resume != nil || len(a.Positions) != 2 {
		t.Fatalf("ack %+v", a)
	}
	if sid := s.d.MustCall(wire.Command{Op: "session_id"}).SessionID; sid != a.SessionID {
		t.Fatalf("SDK session id %q, ack %q", sid, a.SessionID)
	}
	r := s.d.MustCall(wire.Command{Op: "request", Service: "echo", Method: "who", Payload: []byte("hi")})
	if want := fmt.Sprintf("alice-hs %s /who: hi", a.SessionID); r.Response.Code != "OK" || r.Response.Status != 200 || string(r.Response.Payload) != want {
		t.Fatalf("response %+v, want OK 200 %q", r.Response, want)
	}
	// A session id of the app's choice is used as given.
	st = s.connect(t, "named", f.Addr(), f.Token("alice-hs"), func(c *wire.Command) { c.SessionID = "phone-1" })
	if st.Ack.SessionID != "phone-1" {
		t.Fatalf("named session: ack %+v", st.Ack)
	}
}

// A token the gateway refuses fails the first connect with UNAUTHENTICATED and its reason; a
// JWT without exp, or for another audience, is refused.
func unauthenticatedConnectFails(t *testing.T, s *suite) {
	f := s.shared
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"garbage", "not-a-jwt", "invalid_token"},
		{"no_exp", f.SignToken(jwt.MapClaims{"sub": "eve", "iss": Issuer, "aud": Audience}), "invalid_token"},
		{"other_audience", f.SignToken(jwt.MapClaims{"sub": "eve", "iss": Issuer, "aud": "someone-else", "exp": time.Now().Add(time.Hour).Unix()}), "invalid_token"},
		{"expired", f.SignToken(jwt.MapClaims{"sub": "eve", "iss": Issuer, "aud": Audience, "exp": time.Now().Add(-time.Hour).Unix()}), "expired_token"},
		{"missing", "", "missing_token"},
	} {
		r := s.d.Call(wire.Command{Op: "connect", Client: tc.name, Address: f.Addr(), Token: tc.token})
		if e := r.Error; e == nil || e.Kind != wire.KindServerError || e.Code != "UNAUTHENTICATED" || e.Message != tc.reason {
			t.Errorf("%s: connect = %s, want server_error UNAUTHENTICATED %q", tc.name, failureString(r.Error), tc.reason)
		}
	}
}

func ping(t *testing.T, s *suite) {
	s.connect(t, "", s.shared.Addr(), s.shared.Token("pinger"), nil)
	for range 3 {
		if r := s.d.MustCall(wire.Command{Op: "ping"}); r.RTTMs <= 0 || r.RTTMs > 5000 {
			t.Fatalf("rtt %v ms", r.RTTMs)
		}
	}
}

// A session with nothing to say outlives the idle timeout (5 s): the SDK pings at the heartbeat
// interval the ack gave (2 s).
func heartbeatKeepsSession(t *testing.T, s *suite) {
	mark := s.d.Mark()
	s.connect(t, "", s.shared.Addr(), s.shared.Token("quiet"), nil)
	s.noEvent(t, mark, 6500*time.Millisecond, "disconnect of an idle session", IsState("", "disconnected"))
}

// Two requests on one connection: the first is held by the backend, the second answered at
// once; each response reaches its own request.
func requestsOutOfOrder(t *testing.T, s *suite) {
	f := s.shared
	s.connect(t, "", f.Addr(), f.Token("ooo"), nil)
	slow := s.d.Send(wire.Command{Op: "request", Service: "echo", Method: "sleep/2000/ooo", Payload: []byte("first")})
	wait.For(t, 10*time.Second, "the backend has the first request", func() bool { return f.Backend.Saw("sleep/2000/ooo") })
	mark := s.d.Mark()
	fastID := s.d.Send(wire.Command{Op: "request", Service: "echo", Method: "now/ooo", Payload: []byte("second")})
	fr := s.d.Result(fastID, eventTimeout)
	if _, ok := s.d.Find(mark, func(e Received) bool { return e.Event.Event == "result" && e.ID == slow }); ok {
		t.Fatal("the held request was answered before the immediate one")
	}
	sr := s.d.Result(slow, eventTimeout)
	if !strings.HasSuffix(string(fr.Response.Payload), "/now/ooo: second") || !strings.HasSuffix(string(sr.Response.Payload), "/sleep/2000/ooo: first") {
		t.Fatalf("responses crossed: fast %q, slow %q", fr.Response.Payload, sr.Response.Payload)
	}
}

// The gateway's typed answers are responses, not failures: the call returns the code.
func typedResponseErrors(t *testing.T, s *suite) {
	f := s.shared
	s.connect(t, "", f.Addr(), f.Token("typed"), nil)
	for _, tc := range []struct {
		c    wire.Command
		code string
	}{
		{wire.Command{Op: "request", Service: "nope", Method: "x"}, "NO_ROUTE"},
		{wire.Command{Op: "request", Service: "echo", Method: "sleep/3000/t", TimeoutMs: 200}, "TIMEOUT"},
		{wire.Command{Op: "request", Service: "down", Method: "x"}, "BACKEND_ERROR"},
	} {
		r := s.d.MustCall(tc.c)
		if r.Response == nil || r.Response.Code != tc.code || r.Response.Message == "" {
			t.Errorf("%s/%s: %+v, want %s with a message", tc.c.Service, tc.c.Method, r.Response, tc.code)
		}
	}
	s.d.MustCall(wire.Command{Op: "ping"}) // the session goes on
}

// A request larger than the frame limit is refused by the SDK: the gateway never receives an
// oversized frame, and the connection stays (R4): no disconnect, the next call goes out on it.
func frameTooLargeRefused(t *testing.T, s *suite) {
	f := s.shared
	st := s.connect(t, "", f.Addr(), f.Token("big"), nil)
	g := f.Gateway(st.Ack.ServerID)
	refusedAndKept(t, s, 70000)
	if n, err := g.Metric("tcpgw_closes_total", "reason", "frame_too_large"); err != nil || n != 0 {
		t.Fatalf("the gateway closed %v connections for frame_too_large (%v)", n, err)
	}
}

// A gateway configured with limits.maxFrameBytes 4096 names it in the ack, and the SDK (its own
// limit the default 65536) sends nothing larger (R4): a request of 5000 bytes fails locally with
// frame_too_large, nothing of it reaches the gateway, which closes nothing, and the connection
// stays; a request within 4096 bytes goes out on it.
func frameLimitFromAck(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{Configure: func(c *config.Config) { c.Limits.MaxFrameBytes = 4096 }})
	g := f.Gateways[0]
	st := s.connect(t, "", f.Dial(g), f.Token("small-frames"), nil)
	if st.Ack.MaxFrameBytes != 4096 {
		t.Fatalf("ack max_frame_bytes %d, want the gateway's 4096", st.Ack.MaxFrameBytes)
	}
	refusedAndKept(t, s, 5000)
	if r := s.d.MustCall(wire.Command{Op: "request", Service: "echo", Method: "near", Payload: make([]byte, 3500)}); r.Response.Code != "OK" {
		t.Fatalf("a request within the gateway's limit: %+v", r.Response)
	}
	ms, err := g.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	// One handshake and no close: the refusal cost no connection. Two requests read: the
	// small one and the near one, nothing of the refused one.
	if hs, closes, reqs := ms.Value("tcpgw_handshakes_total", "result", "ok"), ms.Value("tcpgw_closes_total"),
		ms.Value("tcpgw_frames_total", "kind", "request", "direction", "in"); hs != 1 || closes != 0 || reqs != 2 {
		t.Fatalf("gateway: %v handshakes, %v closes, %v requests read; want 1, 0, 2", hs, closes, reqs)
	}
	if n := f.Backend.Count("big"); n != 0 {
		t.Fatalf("the backend saw the refused request %d times", n)
	}
}

// refusedAndKept makes a request of payload bytes, which the SDK must refuse with
// frame_too_large (R4), then checks that the connection stayed: a ping and a small request
// succeed at once, with no retry, and no state event (disconnected, connected) comes.
func refusedAndKept(t *testing.T, s *suite, payload int) {
	t.Helper()
	mark := s.d.Mark()
	r := s.d.Call(wire.Command{Op: "request", Service: "echo", Method: "big", Payload: make([]byte, payload)})
	if r.Error == nil || r.Error.Kind != wire.KindFrameTooLarge {
		t.Fatalf("oversized request: %s %+v, want frame_too_large", failureString(r.Error), r.Response)
	}
	s.d.MustCall(wire.Command{Op: "ping"})
	if r := s.d.MustCall(wire.Command{Op: "request", Service: "echo", Method: "small", Payload: make([]byte, 1000)}); r.Response.Code != "OK" {
		t.Fatalf("the request after the refusal: %+v", r.Response)
	}
	s.noEvent(t, mark, time.Second, "state change after a refused call (the connection must stay)",
		func(e Received) bool { return e.Event.Event == "state" })
}

// A second connection of the same user with the same session id replaces the first: the old
// client stops and says why (GOAWAY REPLACED) and does not reconnect; the new one works.
// Replacement happens within one gateway (each holds its own sessions): both connect to the
// same one.
func replacedStops(t *testing.T, s *suite) {
	f := s.shared
	tok := f.Token("dup-user")
	addr := f.Dial(f.Gateways[0])
	s.connect(t, "old", addr, tok, func(c *wire.Command) { c.SessionID = "shared-id"; fast(c) })
	mark := s.d.Mark()
	s.connect(t, "new", addr, tok, func(c *wire.Command) { c.SessionID = "shared-id"; fast(c) })
	stop := s.d.WaitEvent(mark, eventTimeout, "the old client stopped", IsState("old", "stopped"))
	if c := stop.Cause; c == nil || c.Kind != wire.KindGoAway || c.Reason != "REPLACED" {
		t.Fatalf("old client stopped with %s, want goaway REPLACED", failureString(stop.Cause))
	}
	s.noEvent(t, mark, time.Second, "a reconnect of the replaced client", IsState("old", "connected"))
	s.d.MustCall(wire.Command{Op: "ping", Client: "new"})
	// Calls on a stopped client fail at once with the reason it stopped.
	if r := s.d.Call(wire.Command{Op: "ping", Client: "old"}); r.Error == nil || r.Error.Kind != wire.KindGoAway || r.Error.Reason != "REPLACED" {
		t.Fatalf("ping on the replaced client: %s, want goaway REPLACED", failureString(r.Error))
	}
}
