package conformance

import (
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// quietFleet is a fleet whose heartbeats are far apart, so that no PONG is on its way when a
// frame is injected and the SDK writes nothing of its own meanwhile.
func quietFleet(t *testing.T) *Fleet {
	return StartFleet(t, FleetOptions{Configure: func(c *config.Config) {
		c.Limits.HeartbeatInterval = config.Duration{Duration: 10 * time.Second}
		c.Limits.IdleTimeout = config.Duration{Duration: 30 * time.Second}
	}})
}

// fatalError is a fatal ERROR frame with code and message.
func fatalError(t *testing.T, code pb.ErrorCode, message string) []byte {
	t.Helper()
	b, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Error{Error: &pb.Error{Code: code, Message: message, Fatal: true}}}, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A session closed with TOKEN_EXPIRED (a client with a token source) waits delay(0) before its
// first reconnect, not the loss spread: with reconnect settings 400 ms / 800 ms and a loss
// spread of 10 minutes, the first attempt comes within [200 ms, 400 ms] (+300 ms for a loaded
// machine's timer latency) of the ERROR, and its handshake asks the token source again.
func tokenExpiredWaitsDelay0(t *testing.T, s *suite) {
	f := quietFleet(t)
	link := StartLink(t, f.Listener(f.Gateways[0]))
	s.connect(t, "", link.Addr(), f.Token("expiring"), func(c *wire.Command) {
		c.Refreshable = true
		c.Reconnect = &wire.Reconnect{InitialMs: 400, MaxMs: 800, LostSpreadMs: 600_000}
	})
	from := len(link.Accepts(0))
	mark := s.d.Mark()
	sent := time.Now()
	link.Inject(fatalError(t, pb.ErrorCode_ERROR_CODE_TOKEN_EXPIRED, "the token expired"))
	gone := s.d.WaitEvent(mark, eventTimeout, "the end of the session", IsState("", "disconnected"))
	if c := gone.Cause; c == nil || c.Kind != wire.KindServerError || c.Code != "TOKEN_EXPIRED" {
		t.Fatalf("disconnected with %s, want server_error TOKEN_EXPIRED", failureString(gone.Cause))
	}
	wait.For(t, 10*time.Second, "the first reconnect attempt", func() bool { return len(link.Accepts(from)) >= 1 })
	gap := link.Accepts(from)[0].Sub(sent)
	if lo, hi := 200*time.Millisecond, 700*time.Millisecond; gap < lo || gap > hi {
		t.Errorf("first reconnect %v after TOKEN_EXPIRED, want delay(0) within [%v, %v]", gap, lo, hi)
	}
	s.d.WaitEvent(mark, eventTimeout, "the reconnect", IsState("", "connected"))
	s.d.WaitEvent(mark, eventTimeout, "the token source asked for the reconnect", func(e Received) bool {
		return e.Event.Event == "token_fetched" && e.Client == "c" && e.N == 2
	})
	if _, ok := s.d.Find(mark, IsState("", "stopped")); ok {
		t.Fatal("the client stopped")
	}
	t.Logf("FIGURES first reconnect after %v", gap.Round(time.Millisecond))
}

// A fatal ERROR followed at once by FIN and a reset (what a client that wrote after the
// gateway's last frame can get) is still read and surfaced: the app sees the ERROR's code and
// message as the cause, not a transport error, and the client reconnects.
func fatalErrorBeforeReset(t *testing.T, s *suite) {
	f := quietFleet(t)
	link := StartLink(t, f.Listener(f.Gateways[0]))
	s.connect(t, "", link.Addr(), f.Token("reset"), fast)
	mark := s.d.Mark()
	link.InjectThenReset(fatalError(t, pb.ErrorCode_ERROR_CODE_SERVER_FULL, "the gateway is full"))
	gone := s.d.WaitEvent(mark, eventTimeout, "the end of the connection", IsState("", "disconnected"))
	if c := gone.Cause; c == nil || c.Kind != wire.KindServerError || c.Code != "SERVER_FULL" || c.Message != "the gateway is full" {
		t.Fatalf("disconnected with %s, want server_error SERVER_FULL %q", failureString(gone.Cause), "the gateway is full")
	}
	s.d.WaitEvent(mark, eventTimeout, "the reconnect", IsState("", "connected"))
	s.d.MustCall(wire.Command{Op: "ping"})
}

// A client whose frames stop reaching the gateway while the gateway's still reach it (the link
// drops them and answers the client's PINGs itself, so its heartbeat sees nothing wrong) is
// closed by the gateway's idle timeout (5 s) with ERROR IDLE_TIMEOUT: the SDK reports that
// cause, reconnects as after a loss and resumes its session.
func idleTimeoutRecovered(t *testing.T, s *suite) {
	link := StartLink(t, s.shared.Listener(s.shared.Gateways[0]))
	s.connect(t, "", link.Addr(), s.shared.Token("unheard"), fast)
	mark := s.d.Mark()
	link.Mute()
	gone := s.d.WaitEvent(mark, eventTimeout, "the idle timeout", IsState("", "disconnected"))
	if c := gone.Cause; c == nil || c.Kind != wire.KindServerError || c.Code != "IDLE_TIMEOUT" {
		t.Fatalf("disconnected with %s, want server_error IDLE_TIMEOUT", failureString(gone.Cause))
	}
	back := s.d.WaitEvent(mark, eventTimeout, "the reconnect", IsState("", "connected"))
	if r := back.Ack.Resume; r == nil || r.Status != "COMPLETE" {
		t.Fatalf("reconnect after IDLE_TIMEOUT: resume %+v, want COMPLETE", r)
	}
	s.d.MustCall(wire.Command{Op: "ping"})
}
