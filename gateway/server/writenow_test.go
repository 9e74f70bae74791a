package server_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// TestWakeOverAFullSocketDeliversEveryFrameInOrder queues batches on a real session whose
// client reads nothing, as the downlink's deliverer does (QueueEncoded, then Wake), until a
// Wake finds the socket full: the kernel took part of the batch and the rest went to a flush
// goroutine through netpoll. More frames are queued behind it; then the client reads, and
// must get every frame once, in order: the write made on the deliverer's goroutine, the rest
// netpoll finishes, and the frames queued later never overtake one another.
func TestWakeOverAFullSocketDeliversEveryFrameInOrder(t *testing.T) {
	h := start(t, nil, func(c *config.Config) {
		c.Limits.OutboundQueueBytes = 16 << 20
		c.Limits.OutboundQueueFrames = 4096
	})
	r := h.raw()
	r.handshake(h.token("slow-reader"))
	// The HANDSHAKE_ACK may reach the client before the session is registered.
	eventually(t, "the session registered", func() bool { return h.srv.Sessions().Len() == 1 })
	all := h.srv.Sessions().All(nil)
	if len(all) != 1 {
		t.Fatalf("%d sessions, want 1", len(all))
	}
	s := all[0]
	// The HANDSHAKE_ACK's flush may still be ending after the client read it: a Queue meanwhile
	// joins that flush and owes no wake.
	select {
	case <-s.Flushed():
	case <-time.After(5 * time.Second):
		t.Fatal("the HANDSHAKE_ACK's flush never ended")
	}
	payload := make([]byte, 16<<10)
	sent := 0
	queue := func() bool {
		f, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{MessageId: strconv.Itoa(sent), Payload: payload}}}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		sent++
		return h.srv.QueueEncoded(s, "push", f)
	}
	var tally session.Tally
	full := false
	for round := 0; !full && round < 400; round++ { // 400 × 8 × 16 KiB = 50 MiB at most
		owed := false
		for range 8 {
			owed = queue() || owed
		}
		if !owed {
			t.Fatalf("round %d: no wake owed though the last batch was written", round)
		}
		s.Wake(&tally)
		pending, stalledSince, _ := s.Outbound()
		full = pending > 0 && stalledSince != 0
	}
	if !full {
		t.Fatal("the socket never filled: no rest was handed to a flush")
	}
	for range 16 {
		// Behind the flush of the rest; should that flush have ended meanwhile (the kernel's
		// buffers grow), the Queue owes a wake, which the deliverer would make.
		if queue() {
			s.Wake(&tally)
		}
	}
	tally.Report()
	if counter(h.m.Writes) == 0 {
		t.Fatal("the writes made by Wake were not counted")
	}
	for i := range sent {
		f := r.read()
		if got := f.GetPush().GetMessageId(); got != strconv.Itoa(i) {
			t.Fatalf("frame %d of %d: PUSH %q (%v), want %d: lost, repeated or out of order", i, sent, got, f, i)
		}
	}
	if closing, reason := s.Closing(); closing {
		t.Fatalf("session closing (%s) after a full socket", reason)
	}
}

// TestDeliverOverAFullSocketDeliversEveryFrameInOrder delivers lone frames to a real session
// whose client reads nothing (DeliverEncoded: each written at once while the socket takes
// it), while another goroutine sends frames to the same session, until the socket is full
// and a frame's rest went to a flush goroutine; then the client reads, and must get every
// frame whole and once, each goroutine's in its order.
func TestDeliverOverAFullSocketDeliversEveryFrameInOrder(t *testing.T) {
	h := start(t, nil, func(c *config.Config) {
		c.Limits.OutboundQueueBytes = 16 << 20
		c.Limits.OutboundQueueFrames = 4096
	})
	r := h.raw()
	r.handshake(h.token("slow-reader"))
	// The HANDSHAKE_ACK may reach the client before the session is registered.
	eventually(t, "the session registered", func() bool { return h.srv.Sessions().Len() == 1 })
	all := h.srv.Sessions().All(nil)
	if len(all) != 1 {
		t.Fatalf("%d sessions, want 1", len(all))
	}
	s := all[0]
	payload := make([]byte, 16<<10)
	frame := func(id string) []byte {
		f, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{MessageId: id, Payload: payload}}}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	sends := make(chan int)
	sent := 0
	go func() {
		defer close(sends)
		for i := range 64 {
			h.srv.SendEncoded(s, "push", frame("s"+strconv.Itoa(i)))
			sends <- i
		}
	}()
	var tally session.Tally
	delivered, full := 0, false
	for ; delivered < 3000 && (!full || sent < 64); delivered++ { // 3000 × 16 KiB = 47 MiB at most
		h.srv.DeliverEncoded(s, "push", frame("d"+strconv.Itoa(delivered)), &tally)
		if _, stalledSince, _ := s.Outbound(); stalledSince != 0 {
			full = true
		}
		select {
		case <-sends:
			sent++
		default:
		}
	}
	for range sends {
		sent++
	}
	tally.Report()
	if !full {
		t.Fatal("the socket never filled: no rest was handed to a flush")
	}
	if counter(h.m.Writes) == 0 {
		t.Fatal("the writes made by DeliverEncoded were not counted")
	}
	next := map[byte]int{}
	for range delivered + sent {
		id := r.read().GetPush().GetMessageId()
		if id == "" || strconv.Itoa(next[id[0]]) != id[1:] {
			t.Fatalf("PUSH %q after %v: lost, repeated or out of order", id, next)
		}
		next[id[0]]++
	}
	if next['d'] != delivered || next['s'] != 64 {
		t.Fatalf("read %v, want %d delivered and 64 sent", next, delivered)
	}
	if closing, reason := s.Closing(); closing {
		t.Fatalf("session closing (%s) after a full socket", reason)
	}
}
