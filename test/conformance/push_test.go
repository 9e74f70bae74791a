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

// A second ack of the same push is refused with a non-fatal ERROR UNKNOWN_PUSH, which the app
// sees; the session goes on.
func secondAckRefused(t *testing.T, s *suite) {
	f := s.shared
	s.connect(t, "", f.Addr(), f.Token("twice"), nil)
	mark := s.d.Mark()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = f.Publisher().PushAndWaitAck(ctx, push.Message{ID: "twice-1", Target: push.User("twice")})
	}()
	s.d.WaitEvent(mark, eventTimeout, "the push", IsPush("", "twice-1"))
	s.d.MustCall(wire.Command{Op: "ack", MessageID: "twice-1"})
	s.d.MustCall(wire.Command{Op: "ack", MessageID: "twice-1"})
	e := s.d.WaitEvent(mark, eventTimeout, "the non-fatal UNKNOWN_PUSH", func(e Received) bool { return e.Event.Event == "error" })
	if e.Code != "UNKNOWN_PUSH" {
		t.Fatalf("error event %+v", e.Event)
	}
	s.d.MustCall(wire.Command{Op: "ping"})
	if _, ok := s.d.Find(mark, IsState("", "disconnected")); ok {
		t.Fatal("the session ended after a non-fatal ERROR")
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
