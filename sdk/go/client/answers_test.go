package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// written returns the frames c wrote on gw before a PING sent now: frames go out in order, so
// whatever an earlier answer wrote is read first.
func written(t *testing.T, c *client.Client, gw *fakeConn) []*pb.Frame {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := c.Ping(ctx)
		errc <- err
	}()
	var out []*pb.Frame
	for {
		f := gw.read() // fails the test after timeout
		if f.GetPing() == nil {
			out = append(out, f)
			continue
		}
		gw.write(&pb.Frame{Seq: f.Seq, Body: &pb.Frame_Pong{Pong: &pb.Pong{}}})
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// connectPushes connects to a fake gateway and returns the client, its connection and the
// pushes it delivers.
func connectPushes(t *testing.T, g *fakeGateway, onConnect func(*pb.HandshakeAck)) (*client.Client, *fakeConn, chan *client.Push) {
	t.Helper()
	pushes := make(chan *client.Push, 8)
	connected := connectAsync(t, client.Options{Addr: g.addr(), Token: "t", Reconnect: fastReconnect,
		OnPush: func(p *client.Push) { pushes <- p }, OnConnect: onConnect})
	gw := g.accept()
	gw.handshake()
	gw.ack()
	return connected(), gw, pushes
}

func pushFrame(id string, offset int64, ack, reply bool) *pb.Frame {
	return &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{MessageId: id, AckRequired: ack, ReplyExpected: reply,
		Position: &pb.Position{Partition: 0, Offset: offset}}}}
}

func next(t *testing.T, pushes chan *client.Push) *client.Push {
	t.Helper()
	select {
	case p := <-pushes:
		return p
	case <-time.After(timeout):
		t.Fatal("no push delivered")
		return nil
	}
}

// The answers the gateway would refuse (R19) fail locally and write nothing: an answer the
// push did not ask for (ErrNotRequested), a second ack or reply of one push
// (ErrAlreadyAnswered). An answer whose write failed (a reply above the frame limit) takes no
// mark: the next reply goes out.
func TestAnswersRefusedLocally(t *testing.T) {
	g := newFakeGateway(t)
	c, gw, pushes := connectPushes(t, g, nil)
	gw.write(pushFrame("plain", 1, false, false))
	gw.write(pushFrame("both", 2, true, true))
	plain, both := next(t, pushes), next(t, pushes)
	ctx := context.Background()

	if err := c.Ack(ctx, plain); !errors.Is(err, client.ErrNotRequested) {
		t.Fatalf("ack of a push without ack_required: %v, want ErrNotRequested", err)
	}
	if err := c.Reply(ctx, plain, []byte("r")); !errors.Is(err, client.ErrNotRequested) {
		t.Fatalf("reply to a push without reply_expected: %v, want ErrNotRequested", err)
	}
	if err := c.Ack(ctx, both); err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(ctx, both); !errors.Is(err, client.ErrAlreadyAnswered) {
		t.Fatalf("second ack: %v, want ErrAlreadyAnswered", err)
	}
	if _, isFrame := protocol.IsFrameError(c.Reply(ctx, both, make([]byte, 1<<17))); !isFrame {
		t.Fatal("a reply above the frame limit did not fail with a frame error")
	}
	if err := c.Reply(ctx, both, []byte("r")); err != nil {
		t.Fatalf("reply after a failed one: %v", err)
	}
	if err := c.Reply(ctx, both, []byte("again")); !errors.Is(err, client.ErrAlreadyAnswered) {
		t.Fatalf("second reply: %v, want ErrAlreadyAnswered", err)
	}

	got := written(t, c, gw)
	if len(got) != 2 || got[0].GetPushAck().GetMessageId() != "both" || got[0].GetPushAck().GetPosition().GetOffset() != 2 ||
		got[1].GetPushReply().GetMessageId() != "both" || string(got[1].GetPushReply().GetPayload()) != "r" {
		t.Fatalf("the client wrote %v, want one PUSH_ACK and one PUSH_REPLY for push both", got)
	}
}

// Acks racing on one push from many goroutines: exactly one is written.
func TestRacingAcksOneWins(t *testing.T) {
	g := newFakeGateway(t)
	c, gw, pushes := connectPushes(t, g, nil)
	gw.write(pushFrame("m", 1, true, false))
	p := next(t, pushes)

	const racers = 32
	errs := make(chan error, racers)
	var start sync.WaitGroup
	start.Add(1)
	for range racers {
		go func() {
			start.Wait()
			errs <- c.Ack(context.Background(), p)
		}()
	}
	start.Done()
	won := 0
	for range racers {
		switch err := <-errs; {
		case err == nil:
			won++
		case !errors.Is(err, client.ErrAlreadyAnswered):
			t.Fatalf("a racing ack failed with %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d acks won, want 1", won)
	}
	if got := written(t, c, gw); len(got) != 1 || got[0].GetPushAck().GetMessageId() != "m" {
		t.Fatalf("the client wrote %v, want one PUSH_ACK", got)
	}
}

// A push delivered before a reconnect can still be answered after it: the marks are on the
// push, and only the gateway knows whether its window still holds the record.
func TestAnswerAfterReconnect(t *testing.T) {
	g := newFakeGateway(t)
	connects := make(chan struct{}, 2)
	c, gw, pushes := connectPushes(t, g, func(*pb.HandshakeAck) { connects <- struct{}{} })
	<-connects
	gw.write(pushFrame("m", 1, true, false))
	p := next(t, pushes)
	gw.nc.Close() // a loss: the client reconnects

	gw2 := g.accept()
	gw2.handshake()
	gw2.ack()
	// After a resume the client pings to confirm the watermarks (R24).
	if f := gw2.read(); f.GetPing() != nil {
		gw2.write(&pb.Frame{Seq: f.Seq, Body: &pb.Frame_Pong{Pong: &pb.Pong{}}})
	} else {
		t.Fatalf("first frame after the resume: %v, want the PING confirming the watermarks", f)
	}
	select {
	case <-connects:
	case <-time.After(timeout):
		t.Fatal("the client did not reconnect")
	}
	if err := c.Ack(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if got := written(t, c, gw2); len(got) != 1 || got[0].GetPushAck().GetMessageId() != "m" {
		t.Fatalf("the client wrote %v after the reconnect, want the PUSH_ACK", got)
	}
}
