package hostile

import (
	"context"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Finding 2: PUSH_ACK and PUSH_REPLY were accepted for any message_id, so another user could
// satisfy a publisher's PushAndWaitAck or Request (ACKED/REPLIED receipts under the forger's
// identity, even for partition 999), and ACKED receipts dropped correlation_id. Now only a
// recipient answers, once; forgeries get a non-fatal ERROR UNKNOWN_PUSH, and repeated ones
// close the forger.
func TestForgedAnswers(t *testing.T) {
	const refusedLimit = 3
	g := Start(t, Options{Kafka: true, Configure: func(c *config.Config) { c.Limits.RefusedAnswers = refusedLimit }})
	p := publisher(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	alice := g.Dial()
	alice.Handshake(g.Token("alice"), nil)
	mallory := g.Dial()
	mallory.Handshake(g.Token("mallory"), nil)

	type answer struct {
		reply []byte
		err   error
	}
	replied := make(chan answer, 1)
	go func() {
		b, err := p.Request(ctx, push.Message{ID: "q-1", Target: push.User("alice"), Payload: []byte("pay?"), CorrelationID: "c-1"})
		replied <- answer{b, err}
	}()
	q := alice.expectPush("q-1")

	forgeries := []*pb.Frame{
		{Seq: 11, Body: &pb.Frame_PushReply{PushReply: &pb.PushReply{MessageId: "q-1", Position: q.Position, Payload: []byte("yes (forged)")}}},
		{Seq: 12, Body: &pb.Frame_PushReply{PushReply: &pb.PushReply{MessageId: "q-1", Position: &pb.Position{Partition: 999, Offset: 0}, Payload: []byte("yes")}}},
		{Seq: 13, Body: &pb.Frame_PushAck{PushAck: &pb.PushAck{MessageId: "q-1", Position: q.Position}}},
	}
	for _, f := range forgeries {
		mallory.Send(f)
		e := mallory.ExpectError(pb.ErrorCode_ERROR_CODE_UNKNOWN_PUSH)
		if e.Fatal {
			t.Fatalf("a refused answer was fatal: %v", e)
		}
	}
	mallory.expectNothingQueued(14) // still connected
	select {
	case a := <-replied:
		t.Fatalf("the publisher got an answer before alice replied: %q, %v", a.reply, a.err)
	default:
	}

	// alice's own reply is the one the publisher gets; a second one is refused.
	reply := &pb.Frame{Seq: 21, Body: &pb.Frame_PushReply{PushReply: &pb.PushReply{MessageId: "q-1", Position: q.Position, Payload: []byte("yes")}}}
	alice.Send(reply)
	if a := <-replied; a.err != nil || string(a.reply) != "yes" {
		t.Fatalf("Request = %q, %v; want alice's reply", a.reply, a.err)
	}
	alice.Send(reply)
	alice.ExpectError(pb.ErrorCode_ERROR_CODE_UNKNOWN_PUSH)

	// ACKED receipts name the answering session and carry the correlation id.
	acked := make(chan *pb.Receipt, 1)
	go func() {
		r, err := p.PushAndWaitAck(ctx, push.Message{ID: "a-1", Target: push.User("alice"), Payload: []byte("ack me"), CorrelationID: "c-2"})
		if err != nil {
			t.Error(err)
		}
		acked <- r
	}()
	a := alice.expectPush("a-1")
	alice.Send(&pb.Frame{Body: &pb.Frame_PushAck{PushAck: &pb.PushAck{MessageId: "a-1", Position: a.Position}}})
	if r := <-acked; r == nil || r.UserId != "alice" || r.CorrelationId != "c-2" || r.SessionId == "" {
		t.Fatalf("ACKED receipt %v", r)
	}

	// A forger that keeps going is closed.
	mallory.Send(forgeries[0])
	e := mallory.ExpectError(pb.ErrorCode_ERROR_CODE_UNKNOWN_PUSH)
	if !e.Fatal {
		t.Fatalf("refused answer %d was not fatal (limit %d)", refusedLimit+1, refusedLimit)
	}
	mallory.ExpectClosed()
	if got := g.Metric("tcpgw_answers_refused_total", "reason", "unknown"); got != refusedLimit+1 {
		t.Errorf("answers_refused{unknown} = %v, want %d", got, refusedLimit+1)
	}
}
