package conformance

import (
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// The resume token of a GOAWAY DRAINING is used once (R26): the SDK's gateway is drained, and
// the handshake of its reconnect (through the LB, to the other gateway) carries that GOAWAY's
// token; once it is acknowledged the token is gone: an export holds none, and after a loss
// without GOAWAY (the link cut) the next handshake resumes without a token. The link sits in
// front of the LB and records every handshake and GOAWAY.
func resumeTokenOnce(t *testing.T, s *suite) {
	s.d.Require(wire.CapPositions)
	f := StartFleet(t, FleetOptions{Gateways: 2, Partitions: 2})
	link := StartLink(t, f.LB.Addr())
	link.Record()
	st := s.connect(t, "", link.Addr(), f.Token("mover"), fast)
	from := f.Gateway(st.Ack.ServerID)

	mark := s.d.Mark()
	f.LB.Remove(f.Listener(from))
	drained := make(chan bool, 1)
	go func() { drained <- from.PreStop().OK() }()
	gone := s.d.WaitEvent(mark, eventTimeout, "the GOAWAY", IsState("", "disconnected"))
	if c := gone.Cause; c == nil || c.Kind != wire.KindGoAway || c.Reason != "DRAINING" {
		t.Fatalf("left with %s, want goaway DRAINING", failureString(gone.Cause))
	}
	moved := s.d.WaitEvent(mark, eventTimeout, "the resume on the other gateway", IsState("", "connected"))
	if moved.Ack.ServerID == from.ID {
		t.Fatalf("resumed on the drained gateway %s", from.ID)
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
		t.Fatalf("the reconnect after GOAWAY resumed with token %q, want the GOAWAY's %q", got, goaways[0].ResumeToken)
	}
	if exp := s.d.MustCall(wire.Command{Op: "export_positions"}).Positions; exp == nil || exp.ResumeToken != "" {
		t.Fatalf("export after the acknowledged resume %+v, want no resume token", exp)
	}
	if !<-drained {
		t.Fatalf("preStop did not report a finished drain:\n%s", from.Log.Tail(20))
	}

	mark = s.d.Mark()
	link.Cut()
	s.d.WaitEvent(mark, eventTimeout, "the reconnect after the cut", IsState("", "connected"))
	wait.For(t, 10*time.Second, "the third handshake", func() bool { return len(link.Handshakes()) == 3 })
	if r := link.Handshakes()[2].GetResume(); r == nil || r.ResumeToken != "" {
		t.Fatalf("the reconnect after a loss resumed with %v, want a resume without token", r)
	}
}
