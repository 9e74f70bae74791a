package conformance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// producer publishes numbered records to one user at a steady pace and keeps, in order, the
// ids Kafka accepted: those are the records the app must receive.
type producer struct {
	mu       sync.Mutex
	accepted []string
	failed   int
	stop     chan struct{}
	done     chan struct{}
}

func startProducer(f *Fleet, user, prefix string, every time.Duration) *producer {
	p := &producer{stop: make(chan struct{}), done: make(chan struct{})}
	pub := f.Publisher()
	go func() {
		defer close(p.done)
		for i := 0; i < 10000; i++ { // bounded: the test stops it long before
			id := fmt.Sprintf("%s-%04d", prefix, i)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := pub.Push(ctx, push.Message{ID: id, Target: push.User(user), Payload: []byte(id)})
			cancel()
			p.mu.Lock()
			if err == nil {
				p.accepted = append(p.accepted, id)
			} else {
				p.failed++
			}
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	return p
}

// Stop ends publishing and returns the accepted ids in order.
func (p *producer) Stop() []string {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.accepted)
}

func pushIDs(ps []*wire.Push) []string {
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.MessageID)
	}
	return ids
}

// The client's gateway drains (preStop, as Kubernetes runs it) while records are published to
// the client and one of its requests is held by the backend: the request is answered on the
// leaving connection, the client leaves on GOAWAY DRAINING, resumes COMPLETE on the other
// gateway, and the app has every accepted record once, in order.
func drainResumeComplete(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{Gateways: 2, Partitions: 2})
	st := s.connect(t, "", f.Addr(), f.Token("drainee"), nil)
	from := f.Gateway(st.Ack.ServerID)
	prod := startProducer(f, "drainee", "drain", 20*time.Millisecond)
	s.d.WaitEvent(0, eventTimeout, "the first record", IsPush("", "drain-0000"))
	held := s.d.Send(wire.Command{Op: "request", Service: "echo", Method: "sleep/1000/held", Payload: []byte("held")})
	wait.For(t, 10*time.Second, "the backend holds the request", func() bool { return f.Backend.Saw("sleep/1000/held") })

	mark := s.d.Mark()
	f.LB.Remove(f.Listener(from))
	drained := make(chan bool, 1)
	go func() { drained <- from.PreStop().OK() }()

	gone := s.d.WaitEvent(mark, eventTimeout, "the GOAWAY", IsState("", "disconnected"))
	if c := gone.Cause; c == nil || c.Kind != wire.KindGoAway || c.Reason != "DRAINING" || c.ReconnectDelayMs > 1000 {
		t.Fatalf("left with %s, want goaway DRAINING with a delay of at most 1 s", failureString(gone.Cause))
	}
	back := s.d.WaitEvent(mark, eventTimeout, "the resumed session", IsState("", "connected"))
	if a := back.Ack; a.ServerID == from.ID || a.SessionID != st.Ack.SessionID || a.Resume == nil || a.Resume.Status != "COMPLETE" || len(a.Resume.Rejected) != 0 {
		t.Fatalf("resumed with ack %+v (resume %+v), want the same session on the other gateway, COMPLETE", a, a.Resume)
	}
	if r := s.d.Result(held, eventTimeout); r.Error != nil || r.Response.Code != "OK" || string(r.Response.Payload) != fmt.Sprintf("drainee %s /sleep/1000/held: held", st.Ack.SessionID) {
		t.Fatalf("held request: %s %+v", failureString(r.Error), r.Response)
	}
	if !<-drained {
		t.Fatalf("preStop did not report a finished drain:\n%s", from.Log.Tail(20))
	}
	// Keep publishing a little on the new gateway, then check everything arrived once.
	time.Sleep(300 * time.Millisecond) // the producer's pace: a few live records after the move
	accepted := prod.Stop()
	last := accepted[len(accepted)-1]
	s.d.WaitEvent(0, 20*time.Second, "the last accepted record "+last, IsPush("", last))
	if got := pushIDs(s.d.Pushes(0, "")); !slices.Equal(got, accepted) {
		t.Fatalf("delivered %d records, accepted %d; delivered %v\naccepted %v", len(got), len(accepted), got, accepted)
	}
	t.Logf("FIGURES records=%d moved_after=%v resume=%+v watermarks=%+v", len(accepted), back.At.Sub(gone.At), back.Ack.Resume, back.Ack.Positions)
}

// The link to the gateway is cut and stays down while more records are published to the
// client than the gateway's window holds (replay.maxRecords 3, one partition): when the link
// is back, the SDK resumes and reports NOT_RECOVERED with the first offset still held, and
// exactly the held records are replayed.
func notRecoveredSurfaced(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{Partitions: 1, Configure: func(c *config.Config) { c.Replay.MaxRecords = 3 }})
	g := f.Gateways[0]
	link := StartLink(t, f.Listener(g))
	s.connect(t, "", link.Addr(), f.Token("forgotten"), fast)
	f.Push(push.Message{ID: "nr-0", Target: push.User("forgotten")})
	first := s.d.WaitEvent(0, eventTimeout, "the first record", IsPush("", "nr-0"))
	base := first.Push.Position.Offset

	mark := s.d.Mark()
	link.SetDown(true)
	link.Cut()
	s.d.WaitEvent(mark, eventTimeout, "the loss", IsState("", "disconnected"))
	skipped, err := g.Metric("tcpgw_downlink_records_total", "result", "skipped")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 6; i++ {
		f.Push(push.Message{ID: fmt.Sprintf("nr-%d", i), Target: push.User("forgotten")})
	}
	wait.For(t, 10*time.Second, "the gateway read the records meant for the absent client", func() bool {
		n, err := g.Metric("tcpgw_downlink_records_total", "result", "skipped")
		return err == nil && n >= skipped+6
	})
	link.SetDown(false)
	back := s.d.WaitEvent(mark, eventTimeout, "the resumed session", IsState("", "connected"))
	r := back.Ack.Resume
	if r == nil || r.Status != "NOT_RECOVERED" || len(r.NotRecovered) != 1 || r.NotRecovered[0] != (wire.Position{Partition: 0, Offset: base + 4}) {
		t.Fatalf("resume result %+v, want NOT_RECOVERED from offset %d", r, base+4)
	}
	s.d.WaitEvent(mark, eventTimeout, "the last held record", IsPush("", "nr-6"))
	s.d.MustCall(wire.Command{Op: "ping"})
	if got := pushIDs(s.d.Pushes(mark, "")); fmt.Sprint(got) != "[nr-4 nr-5 nr-6]" {
		t.Fatalf("replayed %v, want [nr-4 nr-5 nr-6]", got)
	}
}

// Twelve clients on a gateway that is SIGKILLed: each loses its connection at the same instant
// and, with the SDK's default reconnect settings, comes back on the other gateway spread over
// the loss window (3 s), not all at once, each with COMPLETE.
func reconnectSpreadAfterKill(t *testing.T, s *suite) {
	const clients = 12
	f := StartFleet(t, FleetOptions{Gateways: 2, Partitions: 1})
	victim, survivor := f.Gateways[0], f.Gateways[1]
	f.LB.Remove(f.Listener(survivor))
	for i := range clients {
		st := s.connect(t, fmt.Sprintf("k%d", i), f.Addr(), f.Token(fmt.Sprintf("kill-%d", i)), nil)
		if st.Ack.ServerID != victim.ID {
			t.Fatalf("client %d on %s, want %s", i, st.Ack.ServerID, victim.ID)
		}
	}
	mark := s.d.Mark()
	f.LB.Add(f.Listener(survivor))
	f.LB.Remove(f.Listener(victim))
	killed := time.Now()
	if err := victim.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var after []time.Duration
	for i := range clients {
		name := fmt.Sprintf("k%d", i)
		e := s.d.WaitEvent(mark, 10*time.Second, "the reconnect of "+name, IsState(name, "connected"))
		if a := e.Ack; a.ServerID != survivor.ID || a.Resume == nil || a.Resume.Status != "COMPLETE" {
			t.Fatalf("%s came back with %+v", name, a)
		}
		after = append(after, e.At.Sub(killed))
	}
	slices.Sort(after)
	t.Logf("FIGURES reconnects after the kill: first %v, median %v, last %v", after[0], after[clients/2], after[clients-1])
	// Uniform in [0, 3 s] plus the handshake: 12 draws all within 0.75 s of each other has a
	// probability below 1e-5.
	if last := after[clients-1]; last > 3*time.Second+2*time.Second {
		t.Errorf("last reconnect %v after the kill, want within the 3 s spread (+2 s)", last)
	}
	if span := after[clients-1] - after[0]; span < 750*time.Millisecond {
		t.Errorf("reconnects spread over %v only: not spread", span)
	}
	for i := range after {
		n := 0
		for j := i; j < len(after) && after[j]-after[i] < 250*time.Millisecond; j++ {
			n++
		}
		if n > 8 {
			t.Errorf("%d of %d reconnects within 250 ms from %v", n, clients, after[i])
			break
		}
	}
}

// An app killed by the OS: it exports its positions, stops, records are published meanwhile,
// and the next process imports them: the same session resumes COMPLETE with exactly the
// missed records.
func appRestartResume(t *testing.T, s *suite) {
	s.d.Require(wire.CapPositions)
	f := StartFleet(t, FleetOptions{Partitions: 2})
	s.connect(t, "before", f.Addr(), f.Token("restarter"), nil)
	f.Push(push.Message{ID: "rs-0", Target: push.User("restarter")})
	s.d.WaitEvent(0, eventTimeout, "the first record", IsPush("before", "rs-0"))
	exp := s.d.MustCall(wire.Command{Op: "export_positions", Client: "before"}).Positions
	if exp == nil || exp.SessionID == "" || len(exp.Positions) != 2 {
		t.Fatalf("exported %+v, want the session and a position for each of 2 partitions", exp)
	}
	s.d.MustCall(wire.Command{Op: "close", Client: "before"})
	for _, id := range []string{"rs-1", "rs-2"} {
		f.Push(push.Message{ID: id, Target: push.User("restarter")})
	}
	mark := s.d.Mark()
	st := s.connect(t, "after", f.Addr(), f.Token("restarter"), func(c *wire.Command) { c.Resume = exp })
	if a := st.Ack; a.SessionID != exp.SessionID || a.Resume == nil || a.Resume.Status != "COMPLETE" {
		t.Fatalf("ack after the restart %+v, want the exported session, COMPLETE", a)
	}
	s.d.WaitEvent(mark, eventTimeout, "the last missed record", IsPush("after", "rs-2"))
	s.d.MustCall(wire.Command{Op: "ping", Client: "after"})
	if got := pushIDs(s.d.Pushes(mark, "after")); fmt.Sprint(got) != "[rs-1 rs-2]" {
		t.Fatalf("after the restart got %v, want [rs-1 rs-2]", got)
	}
}

// Watermarks of a resumed connection become the floor only once its first PONG has arrived
// (R22): a resume whose connection is lost right after its HANDSHAKE_ACK, before the replay got
// through, is followed by one from the old floor, so the records published while the client was
// away are replayed then, each once and in order.
func watermarksAfterPong(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{Partitions: 1})
	g := f.Gateways[0]
	link := StartLink(t, f.Listener(g))
	first := s.connect(t, "", link.Addr(), f.Token("mid-replay"), fast)
	if len(first.Ack.Positions) != 1 {
		t.Fatalf("watermarks %+v, want one partition", first.Ack.Positions)
	}
	floor := first.Ack.Positions[0].Offset
	mark := s.d.Mark()
	link.SetDown(true)
	link.Cut()
	s.d.WaitEvent(mark, eventTimeout, "the loss", IsState("", "disconnected"))
	handled := func() float64 {
		var sum float64
		for _, r := range []string{"skipped", "delivered"} {
			n, err := g.Metric("tcpgw_downlink_records_total", "result", r)
			if err != nil {
				t.Fatal(err)
			}
			sum += n
		}
		return sum
	}
	before := handled()
	ids := []string{"wm-0", "wm-1", "wm-2"}
	for _, id := range ids {
		f.Push(push.Message{ID: id, Target: push.User("mid-replay")})
	}
	wait.For(t, 10*time.Second, "the gateway read the records", func() bool { return handled() >= before+3 })

	link.CutAfterFirstFrame(1)
	link.SetDown(false)
	cut := s.d.WaitEvent(mark, eventTimeout, "the resume cut after its HANDSHAKE_ACK", IsState("", "connected"))
	if w := cut.Ack.Positions; len(w) != 1 || w[0].Offset < floor+3 {
		t.Fatalf("watermarks of the cut resume %+v, want offset %d or more (the records are before them)", w, floor+3)
	}
	back := s.d.WaitEvent(mark, eventTimeout, "the resume after the cut one", func(e Received) bool {
		return IsState("", "connected")(e) && e.At.After(cut.At)
	})
	if r := back.Ack.Resume; r == nil || r.Status != "COMPLETE" {
		t.Fatalf("resume after the cut one: %+v, want COMPLETE", r)
	}
	for _, id := range ids {
		s.d.WaitEvent(mark, eventTimeout, "the replay of "+id, IsPush("", id))
	}
	if got := pushIDs(s.d.Pushes(0, "")); strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("pushes %v, want %v once each, in order", got, ids)
	}
}
