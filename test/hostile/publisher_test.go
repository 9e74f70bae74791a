package hostile

import (
	"context"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// publisher is a push SDK publisher on the gateway's topics, closed when the test ends.
func publisher(t *testing.T, g *Gateway) *push.Publisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := push.New(ctx, push.Options{Brokers: []string{g.Brokers}, Topic: g.Topic, ReceiptsTopic: g.Receipts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// expectPush reads the next frame and fails the test unless it is a PUSH of message id.
func (c *Conn) expectPush(id string) *pb.Push {
	c.t.Helper()
	f := c.Read()
	if p := f.GetPush(); p == nil || p.MessageId != id {
		c.t.Fatalf("got %s, want PUSH %s", describe(f), id)
	}
	return f.GetPush()
}

// expectNothingQueued proves that nothing was queued for the connection before now: a PING's
// PONG is the next frame (frames to one connection leave in the order they were queued).
func (c *Conn) expectNothingQueued(seq uint64) {
	c.t.Helper()
	c.Send(&pb.Frame{Seq: seq, Body: &pb.Frame_Ping{Ping: &pb.Ping{}}})
	if f := c.Read(); f.GetPong() == nil || f.Seq != seq {
		c.t.Fatalf("got %s before the PONG: something was queued for this connection", describe(f))
	}
}
