package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
)

// Pushes to a user arrive in order with their Kafka positions: one partition (the user's key),
// increasing offsets.
func pushWithPosition(t *testing.T, s *suite) {
	f := s.shared
	s.connect(t, "", f.Addr(), f.Token("pos-user"), nil)
	mark := s.d.Mark()
	for i := range 3 {
		f.Push(push.Message{ID: fmt.Sprintf("pos-%d", i), Target: push.User("pos-user"), Payload: []byte(fmt.Sprint(i)), CorrelationID: "corr"})
	}
	s.d.WaitEvent(mark, eventTimeout, "the last push", IsPush("", "pos-2"))
	ps := s.d.Pushes(mark, "")
	if len(ps) != 3 {
		t.Fatalf("%d pushes, want 3", len(ps))
	}
	for i, p := range ps {
		if p.MessageID != fmt.Sprintf("pos-%d", i) || string(p.Payload) != fmt.Sprint(i) || p.Position == nil ||
			p.CorrelationID != "corr" || p.CreatedAtMs == 0 || p.AckRequired || p.ReplyExpected {
			t.Fatalf("push %d: %+v", i, p)
		}
		if i > 0 && (p.Position.Partition != ps[0].Position.Partition || p.Position.Offset <= ps[i-1].Position.Offset) {
			t.Fatalf("positions out of order: %+v after %+v", p.Position, ps[i-1].Position)
		}
	}
}

// A push that asks for an ack: the app acks, the publisher's wait ends with ACKED naming the
// session.
func ack(t *testing.T, s *suite) {
	f := s.shared
	st := s.connect(t, "", f.Addr(), f.Token("acker"), nil)
	mark := s.d.Mark()
	got := make(chan *pb.Receipt, 1)
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := f.Publisher().PushAndWaitAck(ctx, push.Message{ID: "ack-1", Target: push.User("acker"), Payload: []byte("a")})
		got <- r
		errc <- err
	}()
	p := s.d.WaitEvent(mark, eventTimeout, "the push asking for an ack", IsPush("", "ack-1"))
	if !p.Push.AckRequired {
		t.Fatalf("push %+v does not ask for an ack", p.Push)
	}
	s.d.MustCall(wire.Command{Op: "ack", MessageID: "ack-1"})
	r := <-got
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if r.Kind != pb.Receipt_KIND_ACKED || r.UserId != "acker" || r.SessionId != st.Ack.SessionID {
		t.Fatalf("receipt %v", r)
	}
}

// A push that expects a reply: the app's reply reaches the publisher's request.
func reply(t *testing.T, s *suite) {
	f := s.shared
	s.connect(t, "", f.Addr(), f.Token("replier"), nil)
	mark := s.d.Mark()
	got := make(chan []byte, 1)
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		b, err := f.Publisher().Request(ctx, push.Message{ID: "q-1", Target: push.User("replier"), Payload: []byte("question")})
		got <- b
		errc <- err
	}()
	p := s.d.WaitEvent(mark, eventTimeout, "the push expecting a reply", IsPush("", "q-1"))
	if !p.Push.ReplyExpected || string(p.Push.Payload) != "question" {
		t.Fatalf("push %+v", p.Push)
	}
	s.d.MustCall(wire.Command{Op: "reply", MessageID: "q-1", Payload: []byte("answer")})
	b := <-got
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if string(b) != "answer" {
		t.Fatalf("reply %q", b)
	}
}

// The answers the gateway would refuse are refused by the SDK itself, writing nothing (R19): a
// second ack and a second reply of one push fail with already_answered, an answer the push did
// not ask for with not_requested. A link between the SDK and the gateway sees only the first
// ack and the first reply; no error event comes, the session goes on, and the first ack and
// reply reached the publisher. (The gateway's non-fatal UNKNOWN_PUSH, for answers a client
// sends anyway, is error_code_actions'.)
func answersRefusedLocally(t *testing.T, s *suite) {
	f := s.shared
	link := StartLink(t, f.LB.Addr())
	link.Record()
	s.connect(t, "", link.Addr(), f.Token("answers"), nil)
	mark := s.d.Mark()
	acked := make(chan *pb.Receipt, 1)
	replied := make(chan []byte, 1)
	errc := make(chan error, 2)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r, err := f.Publisher().PushAndWaitAck(ctx, push.Message{ID: "answers-ack", Target: push.User("answers")})
		acked <- r
		errc <- err
	}()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := f.Publisher().Request(ctx, push.Message{ID: "answers-reply", Target: push.User("answers")})
		replied <- b
		errc <- err
	}()
	f.Push(push.Message{ID: "answers-plain", Target: push.User("answers")})
	for _, id := range []string{"answers-ack", "answers-reply", "answers-plain"} {
		s.d.WaitEvent(mark, eventTimeout, "push "+id, IsPush("", id))
	}

	s.d.MustCall(wire.Command{Op: "ack", MessageID: "answers-ack"})
	s.d.MustCall(wire.Command{Op: "reply", MessageID: "answers-reply", Payload: []byte("answer")})
	for _, c := range []struct {
		cmd  wire.Command
		kind string
	}{
		{wire.Command{Op: "ack", MessageID: "answers-ack"}, wire.KindAlreadyAnswered},
		{wire.Command{Op: "reply", MessageID: "answers-reply", Payload: []byte("again")}, wire.KindAlreadyAnswered},
		{wire.Command{Op: "reply", MessageID: "answers-plain", Payload: []byte("unasked")}, wire.KindNotRequested},
		{wire.Command{Op: "ack", MessageID: "answers-plain"}, wire.KindNotRequested},
		{wire.Command{Op: "ack", MessageID: "answers-reply"}, wire.KindNotRequested},
		{wire.Command{Op: "reply", MessageID: "answers-ack", Payload: []byte("unasked")}, wire.KindNotRequested},
	} {
		r := s.d.Call(c.cmd)
		if r.Error == nil || r.Error.Kind != c.kind {
			t.Errorf("%s of %s: %s, want error kind %s", c.cmd.Op, c.cmd.MessageID, failureString(r.Error), c.kind)
		}
	}
	// The PONG comes after everything the SDK wrote before the PING: the link has seen it all.
	s.d.MustCall(wire.Command{Op: "ping"})
	if got := link.Answers(); fmt.Sprint(got) != "[ack answers-ack reply answers-reply]" {
		t.Errorf("the SDK sent %q, want only the first ack and the first reply", got)
	}
	if e, ok := s.d.Find(mark, func(e Received) bool { return e.Event.Event == "error" || IsState("", "disconnected")(e) }); ok {
		t.Errorf("the session did not go on: %s", describe([]Received{e}))
	}
	if r := <-acked; r.GetKind() != pb.Receipt_KIND_ACKED {
		t.Errorf("receipt %v, want ACKED", r)
	}
	if b := <-replied; string(b) != "answer" {
		t.Errorf("reply %q, want the first one", b)
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}

// A publisher's retry writes one message twice, at two positions: the app sees it once.
func duplicateRecordOnce(t *testing.T, s *suite) {
	f := s.shared
	s.connect(t, "", f.Addr(), f.Token("dedup"), nil)
	mark := s.d.Mark()
	for _, id := range []string{"dup-1", "dup-1", "dup-2", "dup-1", "dup-end"} {
		f.Push(push.Message{ID: id, Target: push.User("dedup"), Payload: []byte(id)})
	}
	s.d.WaitEvent(mark, eventTimeout, "the last push", IsPush("", "dup-end"))
	var ids []string
	for _, p := range s.d.Pushes(mark, "") {
		ids = append(ids, p.MessageID)
	}
	if fmt.Sprint(ids) != "[dup-1 dup-2 dup-end]" {
		t.Fatalf("delivered %v, want [dup-1 dup-2 dup-end]", ids)
	}
}
