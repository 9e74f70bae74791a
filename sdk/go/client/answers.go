package client

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Push is a push delivered to the app (Options.OnPush): the PUSH frame's message and the marks
// of the answers given to it. Client.Ack and Client.Reply refuse locally, writing nothing, the
// answers the gateway would refuse (client-behaviour.md R19): each refused answer counts toward
// the gateway's limits.refusedAnswers, so sending them would let an app's double tap close its
// session. The marks live here, on the object the app holds, rather than in a table of the
// client: answering a push delivered before a reconnect still goes out (only the gateway knows
// whether its window still holds it), and the client keeps nothing per push.
//
// The client hands each delivery to the app as a new *Push; do not copy a Push by value (the
// copy would carry marks of its own).
type Push struct {
	*pb.Push

	acked   atomic.Bool // an Ack took the mark (released again if its write failed)
	replied atomic.Bool // a Reply took the mark (released again if its write failed)
}

// ErrNotRequested fails an Ack of a push without AckRequired, or a Reply to one without
// ReplyExpected: the gateway would refuse it. Nothing was written.
var ErrNotRequested = errors.New("client: the push did not ask for this answer")

// ErrAlreadyAnswered fails a second Ack (or a second Reply) of the same delivered push, or one
// racing the first: the gateway accepts one answer of each kind. Nothing was written.
var ErrAlreadyAnswered = errors.New("client: the push was already answered")

// Ack confirms a push that asked for an ack. It fails with ErrNotRequested or
// ErrAlreadyAnswered without writing anything when the gateway would refuse the ack; of two
// Acks racing on one push exactly one is written. An Ack whose write failed leaves the push
// unanswered, so the app may ack it again (after a reconnect, for instance).
func (c *Client) Ack(ctx context.Context, p *Push) error {
	if !p.AckRequired {
		return fmt.Errorf("%w: ack of push %q", ErrNotRequested, p.MessageId)
	}
	return c.answer(ctx, &p.acked, "ack", p.MessageId,
		&pb.Frame{Body: &pb.Frame_PushAck{PushAck: &pb.PushAck{MessageId: p.MessageId, Position: p.Position}}})
}

// Reply answers a push that expects a reply, with the same local refusals as Ack.
func (c *Client) Reply(ctx context.Context, p *Push, payload []byte) error {
	if !p.ReplyExpected {
		return fmt.Errorf("%w: reply to push %q", ErrNotRequested, p.MessageId)
	}
	return c.answer(ctx, &p.replied, "reply", p.MessageId,
		&pb.Frame{Body: &pb.Frame_PushReply{PushReply: &pb.PushReply{MessageId: p.MessageId, Payload: payload, Position: p.Position}}})
}

// answer takes mark (one winner among racing answers), then writes f on the current
// connection; a failure releases the mark, since nothing reached the gateway.
func (c *Client) answer(ctx context.Context, mark *atomic.Bool, kind, id string, f *pb.Frame) error {
	if !mark.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: %s of push %q", ErrAlreadyAnswered, kind, id)
	}
	cn, err := c.current(ctx)
	if err == nil {
		err = cn.write(f)
	}
	if err != nil {
		mark.Store(false)
	}
	return err
}
