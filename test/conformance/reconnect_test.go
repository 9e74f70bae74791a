package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// A request held by the backend when the link is cut fails with connection_lost and is not
// resent: the backend sees it once, and the client works again after its reconnect.
func lostCallNotResent(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{})
	link := StartLink(t, f.Listener(f.Gateways[0]))
	s.connect(t, "", link.Addr(), f.Token("unlucky"), fast)
	held := s.d.Send(wire.Command{Op: "request", Service: "echo", Method: "sleep/500/lost"})
	wait.For(t, 10*time.Second, "the backend holds the request", func() bool { return f.Backend.Saw("sleep/500/lost") })
	mark := s.d.Mark()
	link.Cut()
	if r := s.d.Result(held, eventTimeout); r.Error == nil || r.Error.Kind != wire.KindConnLost {
		t.Fatalf("request cut off: %s %+v, want connection_lost", failureString(r.Error), r.Response)
	}
	s.d.WaitEvent(mark, eventTimeout, "the reconnect", IsState("", "connected"))
	s.d.MustCall(wire.Command{Op: "ping"})
	time.Sleep(700 * time.Millisecond) // longer than the backend held it: a resend would have arrived
	if n := f.Backend.Count("sleep/500/lost"); n != 1 {
		t.Fatalf("the backend saw the lost request %d times, want 1", n)
	}
}

// Reconnect attempts against a link that stays down, with reconnect settings 200 ms / 800 ms
// and no loss spread: the first attempt waits delay(0), each failed attempt n then waits a
// random time in [d/2, d], d = min(800 ms, 200 ms · 2ⁿ).
func backoffBounds(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{})
	link := StartLink(t, f.Listener(f.Gateways[0]))
	s.connect(t, "", link.Addr(), f.Token("patient"), func(c *wire.Command) {
		c.Reconnect = &wire.Reconnect{InitialMs: 200, MaxMs: 800, LostSpreadMs: -1}
	})
	from := len(link.Accepts(0))
	mark := s.d.Mark()
	link.SetDown(true)
	cut := time.Now()
	link.Cut()
	wait.For(t, 10*time.Second, "six reconnect attempts", func() bool { return len(link.Accepts(from)) >= 6 })
	link.SetDown(false)
	at := link.Accepts(from)
	// Waits: loss → attempt 1: delay(0); attempt k fails → attempt k+1: delay(k-1).
	bounds := [][2]time.Duration{{100, 200}, {100, 200}, {200, 400}, {400, 800}, {400, 800}, {400, 800}}
	prev := cut
	var gaps []time.Duration
	for i, b := range bounds {
		gap := at[i].Sub(prev)
		gaps = append(gaps, gap.Round(time.Millisecond))
		// The low bound is exact; the high one allows for the failed attempt's own time and a
		// loaded machine's timer latency.
		if lo, hi := b[0]*time.Millisecond, b[1]*time.Millisecond+300*time.Millisecond; gap < lo || gap > hi {
			t.Errorf("wait before attempt %d: %v, want within [%v, %v]", i+1, gap, lo, hi)
		}
		prev = at[i]
	}
	t.Logf("FIGURES waits %v", gaps)
	s.d.WaitEvent(mark, eventTimeout, "the reconnect once the link is up", IsState("", "connected"))
}

// Watermarks are a floor for every partition, -1 included: a record written at offset 0 of a
// partition that was empty at the handshake is replayed after a loss, and a partition from
// which the client never received a push is named in the resume (from its watermark), so a
// window that no longer starts at offset 0 does not make the result NOT_RECOVERED.
func floorsNameEveryPartition(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{Partitions: 1, Configure: func(c *config.Config) { c.Replay.MaxRecords = 2 }})
	g := f.Gateways[0]
	link := StartLink(t, f.Listener(g))

	// An empty partition: watermark -1.
	st := s.connect(t, "a", link.Addr(), f.Token("floor-a"), fast)
	if w := st.Ack.Positions; len(w) != 1 || w[0] != (wire.Position{Partition: 0, Offset: -1}) {
		t.Fatalf("watermarks of an empty topic: %+v, want [{0 -1}]", w)
	}
	cutOff := func(publish func()) Received {
		t.Helper()
		mark := s.d.Mark()
		link.SetDown(true)
		link.Cut()
		s.d.WaitEvent(mark, eventTimeout, "the loss", IsState("a", "disconnected"))
		publish()
		link.SetDown(false)
		return s.d.WaitEvent(mark, eventTimeout, "the resume of a", IsState("a", "connected"))
	}
	back := cutOff(func() { f.Push(push.Message{ID: "fa-0", Target: push.User("floor-a")}) })
	if r := back.Ack.Resume; r == nil || r.Status != "COMPLETE" {
		t.Fatalf("resume after the first record: %+v, want COMPLETE", r)
	}
	s.d.WaitEvent(0, eventTimeout, "the record written at offset 0 while away", IsPush("a", "fa-0"))

	// Records for others move the window (2 records) past offset 0; client b never gets one.
	skipped, err := g.Metric("tcpgw_downlink_records_total", "result", "skipped")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		f.Push(push.Message{ID: fmt.Sprintf("other-%d", i), Target: push.User("someone-else")})
	}
	wait.For(t, 10*time.Second, "the gateway read the other records", func() bool {
		n, err := g.Metric("tcpgw_downlink_records_total", "result", "skipped")
		return err == nil && n >= skipped+3
	})
	st = s.connect(t, "b", link.Addr(), f.Token("floor-b"), fast)
	if w := st.Ack.Positions; len(w) != 1 || w[0].Offset < 3 {
		t.Fatalf("watermarks %+v, want offset 3 or more", w)
	}
	mark := s.d.Mark()
	link.SetDown(true)
	link.Cut()
	s.d.WaitEvent(mark, eventTimeout, "the loss", IsState("b", "disconnected"))
	f.Push(push.Message{ID: "fb-0", Target: push.User("floor-b")})
	link.SetDown(false)
	back = s.d.WaitEvent(mark, eventTimeout, "the resume of b", IsState("b", "connected"))
	if r := back.Ack.Resume; r == nil || r.Status != "COMPLETE" || len(r.Rejected) != 0 {
		t.Fatalf("resume of a client that never received from the partition: %+v, want COMPLETE", r)
	}
	s.d.WaitEvent(mark, eventTimeout, "the record written while away", IsPush("b", "fb-0"))
	if ps := s.d.Pushes(0, "b"); len(ps) != 1 {
		t.Fatalf("b got %v, want only fb-0", pushIDs(ps))
	}
}

// With a token source, a reconnect refused as UNAUTHENTICATED asks the source again for every
// attempt and goes on until a good token comes; a source that keeps giving refused tokens stops
// the client after 10 refusals in a row, with the refusal as the reason.
func authRefusalsRetried(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{})
	link := StartLink(t, f.Listener(f.Gateways[0]))
	for _, c := range []string{"recovers", "gives-up"} {
		s.connect(t, c, link.Addr(), f.Token(c), func(cmd *wire.Command) { cmd.Refreshable = true; fast(cmd) })
		s.d.MustCall(wire.Command{Op: "set_token", Client: c, Token: "revoked"})
	}
	mark := s.d.Mark()
	link.Cut()
	fetched := func(client string, n int) func(Received) bool {
		return func(e Received) bool { return e.Event.Event == "token_fetched" && e.Client == client && e.N == n }
	}
	s.d.WaitEvent(mark, eventTimeout, "a second refused attempt", fetched("recovers", 3))
	s.d.MustCall(wire.Command{Op: "set_token", Client: "recovers", Token: f.Token("recovers")})
	s.d.WaitEvent(mark, eventTimeout, "the reconnect with the good token", IsState("recovers", "connected"))

	stop := s.d.WaitEvent(mark, 20*time.Second, "the stop after 10 refusals", IsState("gives-up", "stopped"))
	if c := stop.Cause; c == nil || c.Kind != wire.KindServerError || c.Code != "UNAUTHENTICATED" || c.Message != "invalid_token" {
		t.Fatalf("stopped with %s, want server_error UNAUTHENTICATED invalid_token", failureString(stop.Cause))
	}
	n := 0
	for _, e := range s.d.Events(mark) {
		if e.Event.Event == "token_fetched" && e.Client == "gives-up" {
			n++
		}
	}
	if n != 10 {
		t.Fatalf("the token source was asked %d times after the loss, want 10 (one per refused handshake)", n)
	}
}

// A connection that silently stops carrying bytes (a half-open TCP connection: the link drops
// everything both ways without closing) is detected by the heartbeat: the SDK gives it up
// within two heartbeat intervals (2 s each) plus a margin, reconnects and works.
func missedPongDetected(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{})
	link := StartLink(t, f.Listener(f.Gateways[0]))
	s.connect(t, "", link.Addr(), f.Token("half-open"), fast)
	mark := s.d.Mark()
	frozen := time.Now()
	link.Freeze()
	gone := s.d.WaitEvent(mark, 10*time.Second, "the loss of the frozen connection", IsState("", "disconnected"))
	if took := gone.At.Sub(frozen); took > 5500*time.Millisecond {
		t.Errorf("the frozen connection was given up after %v, want within 2 heartbeats (4 s) + 1.5 s", took)
	}
	if c := gone.Cause; c == nil || c.Kind != wire.KindTransport {
		t.Errorf("cause %s, want a transport failure (the missed PONG)", failureString(gone.Cause))
	}
	s.d.WaitEvent(mark, eventTimeout, "the reconnect", IsState("", "connected"))
	s.d.MustCall(wire.Command{Op: "ping"})
	t.Logf("FIGURES detected after %v", gone.At.Sub(frozen))
}

// A REQUEST that crosses the GOAWAY (the link holds it until the client has read the GOAWAY of
// its draining gateway) is answered DRAINING by that gateway, resent by the SDK on its new
// connection to the other gateway, and answered there: the backend sees it once and the app
// gets the answer, not the DRAINING.
func drainingResend(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{Gateways: 2, Configure: func(c *config.Config) {
		// Heartbeats far apart: a PING held with the request must not end the connection.
		c.Limits.HeartbeatInterval = config.Duration{Duration: 10 * time.Second}
		c.Limits.IdleTimeout = config.Duration{Duration: 30 * time.Second}
	}})
	link := StartLink(t, f.LB.Addr())
	st := s.connect(t, "", link.Addr(), f.Token("crosser"), nil)
	from := f.Gateway(st.Ack.ServerID)

	link.Hold()
	req := s.d.Send(wire.Command{Op: "request", Service: "echo", Method: "crossed", Payload: []byte("x")})
	wait.For(t, 10*time.Second, "the link holds the request", func() bool { return link.Holding("crossed") })
	mark := s.d.Mark()
	f.LB.Remove(f.Listener(from))
	drained := make(chan bool, 1)
	go func() { drained <- from.PreStop().OK() }()
	gone := s.d.WaitEvent(mark, eventTimeout, "the GOAWAY", IsState("", "disconnected"))
	if c := gone.Cause; c == nil || c.Kind != wire.KindGoAway || c.Reason != "DRAINING" {
		t.Fatalf("left with %s, want goaway DRAINING", failureString(gone.Cause))
	}
	link.Release()
	r := s.d.Result(req, eventTimeout)
	if r.Error != nil || r.Response.Code != "OK" || !strings.HasSuffix(string(r.Response.Payload), "/crossed: x") {
		t.Fatalf("the crossed request: %s %+v, want OK from the backend", failureString(r.Error), r.Response)
	}
	back := s.d.WaitEvent(mark, eventTimeout, "the new connection", IsState("", "connected"))
	if back.Ack.ServerID == from.ID {
		t.Fatalf("reconnected to the draining gateway %s", from.ID)
	}
	if n := f.Backend.Count("crossed"); n != 1 {
		t.Fatalf("the backend saw the crossed request %d times, want 1", n)
	}
	// The OK above already shows the resend (without it the app would get DRAINING); the
	// gateway's count says so too while it still runs (its drain may have ended by now).
	if n, err := from.Metric("tcpgw_uplink_requests_total", "code", "draining"); err == nil && n != 1 {
		t.Errorf("the draining gateway answered %v requests DRAINING, want 1", n)
	}
	if !<-drained {
		t.Fatalf("preStop did not report a finished drain:\n%s", from.Log.Tail(20))
	}
}

// A PUSH that arrives after the GOAWAY on the leaving connection (injected where a push that
// raced with the GOAWAY would be) is not delivered and moves no position: a record published
// after the move, at a lower offset than the stray push's, is delivered.
func pushAfterGoAwayIgnored(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{Gateways: 2, Partitions: 1, Configure: func(c *config.Config) {
		c.Limits.HeartbeatInterval = config.Duration{Duration: 10 * time.Second}
		c.Limits.IdleTimeout = config.Duration{Duration: 30 * time.Second}
	}})
	link := StartLink(t, f.LB.Addr())
	st := s.connect(t, "", link.Addr(), f.Token("late"), nil)
	from := f.Gateway(st.Ack.ServerID)
	f.Push(push.Message{ID: "before", Target: push.User("late")})
	first := s.d.WaitEvent(0, eventTimeout, "the first record", IsPush("", "before")).Push.Position

	// A request held by the link keeps the leaving connection open after its GOAWAY.
	link.Hold()
	req := s.d.Send(wire.Command{Op: "request", Service: "echo", Method: "keep-open"})
	wait.For(t, 10*time.Second, "the link holds the request", func() bool { return link.Holding("keep-open") })
	mark := s.d.Mark()
	f.LB.Remove(f.Listener(from))
	go from.PreStop()
	s.d.WaitEvent(mark, eventTimeout, "the GOAWAY", IsState("", "disconnected"))
	stray, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{MessageId: "stray", Payload: []byte("x"),
		Position: &pb.Position{Partition: first.Partition, Offset: first.Offset + 1000}}}}, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	link.Inject(stray)
	link.Release()
	if r := s.d.Result(req, eventTimeout); r.Error != nil || r.Response.Code != "OK" {
		t.Fatalf("held request: %s %+v", failureString(r.Error), r.Response)
	}
	s.d.WaitEvent(mark, eventTimeout, "the new connection", IsState("", "connected"))
	f.Push(push.Message{ID: "after", Target: push.User("late")})
	s.d.WaitEvent(mark, eventTimeout, "the record published after the move", IsPush("", "after"))
	if got := pushIDs(s.d.Pushes(0, "")); fmt.Sprint(got) != "[before after]" {
		t.Fatalf("delivered %v, want [before after] (the stray push ignored)", got)
	}
}

// A frame longer than the client's limit (a 4-byte length of 1 MiB) ends the connection, with
// frame_too_large as the cause, without waiting for the body; the client reconnects and works.
func oversizedIncomingFrame(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{})
	link := StartLink(t, f.Listener(f.Gateways[0]))
	s.connect(t, "", link.Addr(), f.Token("flooded"), fast)
	mark := s.d.Mark()
	link.Inject([]byte{0x00, 0x10, 0x00, 0x00, 0x0a})
	gone := s.d.WaitEvent(mark, eventTimeout, "the end of the connection", IsState("", "disconnected"))
	if c := gone.Cause; c == nil || c.Kind != wire.KindFrameTooLarge {
		t.Fatalf("cause %s, want frame_too_large", failureString(gone.Cause))
	}
	s.d.WaitEvent(mark, eventTimeout, "the reconnect", IsState("", "connected"))
	s.d.MustCall(wire.Command{Op: "ping"})
}
