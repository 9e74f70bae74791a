package conformance

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// The SDK's gateway moves it away with GOAWAY REBALANCE (`gateway rebalance -count 1` over
// the gateway's control socket, as the operator runs it) while records are published to it and
// a request is in flight; the gateway stays up (R42). The SDK tells the app the cause (goaway
// REBALANCE), finishes the held request on the old connection, reconnects through the LB to
// the other gateway (the old connection, still open for the held request, makes the LB's
// least-connections pick the other), resuming the same session with the GOAWAY's resume token
// (seen by a recording link in front of the LB) and COMPLETE; every record arrives once, in
// order; after the acknowledged resume an export holds no token. An SDK that does not know
// REBALANCE (R43) resumes without the token and fails here.
func rebalanceResume(t *testing.T, s *suite) {
	s.d.Require(wire.CapPositions)
	f := StartFleet(t, FleetOptions{Gateways: 2, Partitions: 2})
	link := StartLink(t, f.LB.Addr())
	link.Record()
	st := s.connect(t, "", link.Addr(), f.Token("rebalanced"), fast)
	from := f.Gateway(st.Ack.ServerID)
	prod := startProducer(f, "rebalanced", "rebalance", 20*time.Millisecond)
	s.d.WaitEvent(0, eventTimeout, "the first record", IsPush("", "rebalance-0000"))
	held := s.d.Send(wire.Command{Op: "request", Service: "echo", Method: "sleep/1000/held", Payload: []byte("held")})
	wait.For(t, 10*time.Second, "the backend holds the request", func() bool { return f.Backend.Saw("sleep/1000/held") })

	mark := s.d.Mark()
	if out, err := rebalanceCommand(from, 1, 10); err != nil {
		t.Fatalf("gateway rebalance: %v: %s", err, out)
	}
	gone := s.d.WaitEvent(mark, eventTimeout, "the GOAWAY", IsState("", "disconnected"))
	if c := gone.Cause; c == nil || c.Kind != wire.KindGoAway || c.Reason != "REBALANCE" {
		t.Fatalf("left with %s, want goaway REBALANCE", failureString(gone.Cause))
	}
	back := s.d.WaitEvent(mark, eventTimeout, "the resumed session", IsState("", "connected"))
	if a := back.Ack; a.ServerID == from.ID || a.SessionID != st.Ack.SessionID || a.Resume == nil || a.Resume.Status != "COMPLETE" || len(a.Resume.Rejected) != 0 {
		t.Fatalf("resumed with ack %+v (resume %+v), want the same session on the other gateway, COMPLETE", a, a.Resume)
	}
	goaways := link.GoAways()
	if len(goaways) != 1 || goaways[0].ResumeToken == "" {
		t.Fatalf("GOAWAYs through the link %v, want one with a resume token", goaways)
	}
	hs := link.Handshakes()
	if len(hs) != 2 {
		t.Fatalf("%d handshakes through the link after the move, want 2", len(hs))
	}
	if got := hs[1].GetResume().GetResumeToken(); got != goaways[0].ResumeToken {
		t.Fatalf("the reconnect after GOAWAY REBALANCE resumed with token %q, want the GOAWAY's %q", got, goaways[0].ResumeToken)
	}
	if r := s.d.Result(held, eventTimeout); r.Error != nil || r.Response.Code != "OK" || string(r.Response.Payload) != fmt.Sprintf("rebalanced %s /sleep/1000/held: held", st.Ack.SessionID) {
		t.Fatalf("held request: %s %+v", failureString(r.Error), r.Response)
	}
	if exp := s.d.MustCall(wire.Command{Op: "export_positions"}).Positions; exp == nil || exp.ResumeToken != "" {
		t.Fatalf("export after the acknowledged resume %+v, want no resume token", exp)
	}
	// The rebalanced gateway stayed up and ready.
	if r, err := from.Readyz(); err != nil || r != "" {
		t.Fatalf("%s after the rebalance: /readyz %q %v, want ready", from.ID, r, err)
	}
	time.Sleep(300 * time.Millisecond) // the producer's pace: a few live records after the move
	accepted := prod.Stop()
	last := accepted[len(accepted)-1]
	s.d.WaitEvent(0, 20*time.Second, "the last accepted record "+last, IsPush("", last))
	if got := pushIDs(s.d.Pushes(0, "")); !slices.Equal(got, accepted) {
		t.Fatalf("delivered %d records, accepted %d; delivered %v\naccepted %v", len(got), len(accepted), got, accepted)
	}
	t.Logf("FIGURES records=%d moved_after=%v resume=%+v", len(accepted), back.At.Sub(gone.At), back.Ack.Resume)
}

// rebalanceCommand runs `gateway rebalance -count N -rate R -wait` against g's control socket.
func rebalanceCommand(g *gwproc.Gateway, count, rate int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, g.Bin, "rebalance", "-socket", g.Config.Listen.Control,
		"-count", fmt.Sprint(count), "-rate", fmt.Sprint(rate), "-wait").CombinedOutput()
}

// A GOAWAY with a reason the SDK does not know (99, injected by the link as a newer gateway
// would send it, with a resume token) is handled like DRAINING without the token (R43): the app
// hears of it (cause goaway), the client does not stop, reconnects and resumes the same session
// from its positions with no token, COMPLETE, and every record arrives once, in order. It is
// what an SDK older than REBALANCE does with a REBALANCE, and why such an SDK loses nothing.
func unknownGoAwayReason(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{Gateways: 2, Partitions: 2})
	link := StartLink(t, f.LB.Addr())
	link.Record()
	st := s.connect(t, "", link.Addr(), f.Token("newer"), fast)
	prod := startProducer(f, "newer", "unknown", 20*time.Millisecond)
	s.d.WaitEvent(0, eventTimeout, "the first record", IsPush("", "unknown-0000"))

	goaway, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Goaway{Goaway: &pb.GoAway{
		Reason: pb.GoAway_Reason(99), ReconnectDelayMs: 50, ResumeToken: "rt-unknown"}}}, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	mark := s.d.Mark()
	link.Inject(goaway)
	gone := s.d.WaitEvent(mark, eventTimeout, "the GOAWAY", IsState("", "disconnected"))
	if c := gone.Cause; c == nil || c.Kind != wire.KindGoAway || slices.Contains([]string{"DRAINING", "REPLACED", "REBALANCE"}, c.Reason) {
		t.Fatalf("left with %s, want goaway with a reason the SDK does not name", failureString(gone.Cause))
	}
	back := s.d.WaitEvent(mark, eventTimeout, "the resumed session", IsState("", "connected"))
	if a := back.Ack; a.SessionID != st.Ack.SessionID || a.Resume == nil || a.Resume.Status != "COMPLETE" {
		t.Fatalf("resumed with ack %+v (resume %+v), want the same session, COMPLETE", a, a.Resume)
	}
	hs := link.Handshakes()
	if len(hs) != 2 {
		t.Fatalf("%d handshakes through the link, want 2", len(hs))
	}
	if r := hs[1].GetResume(); r == nil || r.ResumeToken != "" || len(r.Positions) == 0 {
		t.Fatalf("the reconnect resumed with %v, want positions and no token", r)
	}
	s.d.MustCall(wire.Command{Op: "ping"}) // not stopped
	time.Sleep(300 * time.Millisecond)     // the producer's pace: a few live records after the move
	accepted := prod.Stop()
	last := accepted[len(accepted)-1]
	s.d.WaitEvent(0, 20*time.Second, "the last accepted record "+last, IsPush("", last))
	if got := pushIDs(s.d.Pushes(0, "")); !slices.Equal(got, accepted) {
		t.Fatalf("delivered %d records, accepted %d; delivered %v\naccepted %v", len(got), len(accepted), got, accepted)
	}
}
