package downlink_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Another user's session forges answers to alice's push — by message id, at its position, at a
// partition that does not exist: none is accepted, each is refused without closing the forger,
// and the publisher's wait ends only with alice's own ack, which names her session and carries
// the push's correlation id. A second ack from alice is refused too; a forger that keeps going
// is closed. The SDK refuses a second answer itself (client-behaviour.md R19), so the forged and
// repeated answers here are sent as a client that does not would send them: each in a fresh
// client.Push, which carries no mark.
func TestAnswersOnlyFromRecipients(t *testing.T) {
	const refusedLimit = 4
	c := newClusterWith(t, 1, 2, func(cfg *config.Config) { cfg.Limits.RefusedAnswers = refusedLimit })
	c.waitReady()
	alice, aliceBox := c.connect(0, "alice", nil, nil)
	mallory, _ := c.connect(0, "mallory", nil, nil)
	p := c.publisher()
	refused := func(reason string) float64 {
		return metric(t, c.gws[0], "tcpgw_answers_refused_total", map[string]string{"reason": reason})
	}

	type result struct {
		r   *pb.Receipt
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := p.PushAndWaitAck(ctxT(t), push.Message{ID: "m-1", Target: push.User("alice"), Payload: []byte("ack me"), CorrelationID: "c-1"})
		done <- result{r, err}
	}()
	got := aliceBox.waitFor(t, 1)[0]

	ctx := context.Background()
	forged := []*pb.Push{
		{MessageId: "m-1", AckRequired: true, Position: got.Position},
		{MessageId: "m-1", AckRequired: true},
		{MessageId: "m-1", AckRequired: true, Position: &pb.Position{Partition: 999, Offset: got.Position.Offset}},
	}
	for _, f := range forged {
		if err := mallory.Ack(ctx, &client.Push{Push: f}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "mallory's answers refused", func() bool { return refused("unknown") == float64(len(forged)) })
	if _, err := mallory.Ping(ctx); err != nil {
		t.Fatalf("a refused answer closed the session: %v", err)
	}
	select {
	case res := <-done:
		t.Fatalf("the publisher's wait ended before alice answered: %v, %v", res.r, res.err)
	default:
	}

	if err := alice.Ack(ctx, got); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if r := res.r; r.Kind != pb.Receipt_KIND_ACKED || r.UserId != "alice" || r.SessionId != alice.SessionID() ||
		r.CorrelationId != "c-1" || r.GetPosition().GetOffset() != got.Position.Offset {
		t.Fatalf("ACKED receipt %v", r)
	}
	if err := alice.Ack(ctx, got); !errors.Is(err, client.ErrAlreadyAnswered) {
		t.Fatalf("alice's SDK sent a second ack of one push: %v, want ErrAlreadyAnswered", err)
	}
	if err := alice.Ack(ctx, &client.Push{Push: got.Push}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice's second ack refused", func() bool { return refused("not_asked") == 1 })

	for range refusedLimit {
		_ = mallory.Ack(ctx, &client.Push{Push: forged[0]})
	}
	<-mallory.Done()
	var se *client.ServerError
	if !errors.As(mallory.Err(), &se) || se.Code != pb.ErrorCode_ERROR_CODE_UNKNOWN_PUSH {
		t.Fatalf("the forger ended with %v, want ERROR UNKNOWN_PUSH", mallory.Err())
	}
}
