package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
)

// Each ERROR code, as the last frame of a session (injected where the gateway would write it),
// does what R29's table says: the codes that the same handshake would hit again stop the client
// (with a fixed token, the auth ones too); every other code, and the auth ones with a token
// source, reconnect; webhook_unavailable is retried even with a fixed token. A non-fatal ERROR
// is reported and the session goes on. (The gateway sends some of these only in answer to a
// HANDSHAKE; the client's decision does not depend on when it comes.)
func errorCodeActions(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{Configure: func(c *config.Config) {
		// No PONG may be on its way when an ERROR is injected: heartbeats far apart.
		c.Limits.HeartbeatInterval = config.Duration{Duration: 10 * time.Second}
		c.Limits.IdleTimeout = config.Duration{Duration: 30 * time.Second}
	}})
	type tc struct {
		code        pb.ErrorCode
		message     string
		refreshable bool
		stops       bool
	}
	cases := []tc{
		{code: pb.ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION, message: "this gateway speaks protocol_version 3", stops: true},
		{code: pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, message: "expired_token", stops: true},
		{code: pb.ErrorCode_ERROR_CODE_TOKEN_EXPIRED, message: "the token expired", stops: true},
		{code: pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, message: "webhook_unavailable"},
		{code: pb.ErrorCode_ERROR_CODE_TOKEN_EXPIRED, message: "the token expired", refreshable: true},
		{code: pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, message: "invalid_token", refreshable: true},
		{code: pb.ErrorCode_ERROR_CODE_IDLE_TIMEOUT},
		{code: pb.ErrorCode_ERROR_CODE_SLOW_CONSUMER},
		{code: pb.ErrorCode_ERROR_CODE_SERVER_FULL},
		{code: pb.ErrorCode_ERROR_CODE_ADDRESS_LIMIT},
		{code: pb.ErrorCode_ERROR_CODE_HANDSHAKE_TIMEOUT},
		{code: pb.ErrorCode_ERROR_CODE_INTERNAL},
		{code: pb.ErrorCode_ERROR_CODE_BAD_FRAME},
		{code: pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE},
		{code: pb.ErrorCode_ERROR_CODE_HANDSHAKE_REQUIRED},
		{code: pb.ErrorCode_ERROR_CODE_UNKNOWN_PUSH, message: "more than 16 refused answers"},
	}
	links := map[string]*Link{}
	mark := s.d.Mark()
	name := func(i int, c tc) string { return fmt.Sprintf("%d-%s", i, codeName(c.code)) }
	for i, c := range cases {
		n := name(i, c)
		links[n] = StartLink(t, f.Listener(f.Gateways[0]))
		s.connect(t, n, links[n].Addr(), f.Token("coded"), func(cmd *wire.Command) { cmd.Refreshable = c.refreshable; fast(cmd) })
	}
	for i, c := range cases {
		b, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Error{Error: &pb.Error{Code: c.code, Message: c.message, Fatal: true}}}, 1<<16)
		if err != nil {
			t.Fatal(err)
		}
		links[name(i, c)].Inject(b)
	}
	for i, c := range cases {
		n := name(i, c)
		gone := s.d.WaitEvent(mark, eventTimeout, "the end of "+n, IsState(n, "disconnected"))
		if cause := gone.Cause; cause == nil || cause.Kind != wire.KindServerError || cause.Code != codeName(c.code) || cause.Message != c.message {
			t.Errorf("%s: disconnected with %s, want server_error %s %q", n, failureString(gone.Cause), codeName(c.code), c.message)
			continue
		}
		if c.stops {
			stop := s.d.WaitEvent(mark, eventTimeout, "the stop of "+n, IsState(n, "stopped"))
			if cause := stop.Cause; cause == nil || cause.Code != codeName(c.code) {
				t.Errorf("%s: stopped with %s", n, failureString(stop.Cause))
			}
			continue
		}
		s.d.WaitEvent(mark, eventTimeout, "the reconnect of "+n, func(e Received) bool {
			return IsState(n, "connected")(e) && e.At.After(gone.At)
		})
	}
	// The clients that stop do not come back: each has only its first connect (the others have
	// reconnected by now, with the same fast settings).
	for i, c := range cases {
		if n := name(i, c); c.stops && countConnects(s.d, mark, n) != 1 {
			t.Errorf("%s reconnected after a stopping code", n)
		}
	}

	// A non-fatal ERROR: reported, the session goes on.
	n := "non-fatal"
	links[n] = StartLink(t, f.Listener(f.Gateways[0]))
	s.connect(t, n, links[n].Addr(), f.Token("coded"), fast)
	b, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Error{Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_PUSH, Message: "unknown: no push"}}}, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	from := s.d.Mark()
	links[n].Inject(b)
	e := s.d.WaitEvent(from, eventTimeout, "the non-fatal error event", func(e Received) bool { return e.Event.Event == "error" && e.Client == n })
	if e.Code != "UNKNOWN_PUSH" || e.Message != "unknown: no push" {
		t.Fatalf("error event %+v", e.Event)
	}
	s.d.MustCall(wire.Command{Op: "ping", Client: n})
	if _, ok := s.d.Find(from, IsState(n, "disconnected")); ok {
		t.Fatal("a non-fatal ERROR ended the connection")
	}
}

func codeName(c pb.ErrorCode) string { return strings.TrimPrefix(c.String(), "ERROR_CODE_") }

// countConnects is how many connected events client had from index from.
func countConnects(d *Driver, from int, client string) int {
	n := 0
	for _, e := range d.Events(from) {
		if IsState(client, "connected")(e) {
			n++
		}
	}
	return n
}
