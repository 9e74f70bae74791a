package server_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// readWSMessage reads one message of the gateway strictly: binary, final, unmasked, holding
// exactly one protocol frame.
func readWSMessage(t *testing.T, r io.Reader) *pb.Frame {
	t.Helper()
	h, err := ws.ReadHeader(r)
	if err != nil {
		t.Fatalf("reading a message header: %v", err)
	}
	if h.OpCode != ws.OpBinary || !h.Fin || h.Masked || h.Length > 1<<20 {
		t.Fatalf("message header %+v: want a final, unmasked binary message", h)
	}
	msg := make([]byte, h.Length)
	if _, err := io.ReadFull(r, msg); err != nil {
		t.Fatalf("reading a message of %d bytes: %v", h.Length, err)
	}
	f, err := protocol.DecodeMessage(msg, 1<<20)
	if err != nil {
		t.Fatalf("a message of %d bytes is no one protocol frame: %v", h.Length, err)
	}
	return f
}

// TestWSWakeWritesOnTheCallerAndOverAFullSocket is writenow_test's test over WebSocket (ws://):
// the deliverer's Wake writes a session's batch itself, as binary messages, and what a full
// socket leaves, a message cut in the middle included, goes to a flush goroutine that sends
// it byte-exactly before what is queued behind. The client reads nothing until the socket is
// full, then must get every PUSH once, in order, each one whole message with the payload sent.
func TestWSWakeWritesOnTheCallerAndOverAFullSocket(t *testing.T) {
	h := startWS(t, func(c *config.Config) {
		c.Limits.OutboundQueueBytes = 16 << 20
		c.Limits.OutboundQueueFrames = 4096
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	nc, br, _, err := ws.Dialer{}.Dial(ctx, h.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	var src io.Reader = nc
	if br != nil {
		src = io.MultiReader(br, nc)
	}
	r := bufio.NewReaderSize(src, 64<<10)
	hs, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{ProtocolVersion: protocol.Version, Token: h.token("slow-ws-reader")}}}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteFrame(nc, ws.MaskFrame(ws.NewBinaryFrame(hs))); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(wait))
	if f := readWSMessage(t, r); f.GetHandshakeAck() == nil {
		t.Fatalf("handshake answered with %v", f)
	}
	var all []*session.Session
	eventually(t, "the session registered after its HANDSHAKE_ACK", func() bool { // no event for it
		all = h.srv.Sessions().All(nil)
		return len(all) == 1
	})
	s := all[0]

	payload := func(i int) []byte { // sizes across the 2-, 4- and 10-byte headers
		p := make([]byte, []int{60, 5000, 16 << 10, 70000}[i%4]+i%13)
		for j := range p {
			p[j] = byte(i + j*31)
		}
		return p
	}
	sent := 0
	queue := func() bool {
		f, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{MessageId: strconv.Itoa(sent), Payload: payload(sent)}}}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		sent++
		return h.srv.QueueEncoded(s, "push", f)
	}

	// An empty socket takes a batch whole: Wake has written it when it returns.
	select {
	case <-s.Flushed(): // the HANDSHAKE_ACK's flush has ended
	case <-ctx.Done():
		t.Fatal("the HANDSHAKE_ACK's flush never ended")
	}
	var tally session.Tally
	if !queue() || queue() || queue() {
		t.Fatal("the first batch's first Queue owes the wake, the others do not")
	}
	s.Wake(&tally)
	if pending, _, _ := s.Outbound(); pending != 0 {
		t.Fatalf("%d bytes pending after Wake on an empty socket: the deliverer did not write them", pending)
	}

	full := false
	for round := 0; !full && round < 400; round++ { // 400 × 8 × ~23 KiB = 72 MiB at most
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
	for i := range sent {
		_ = nc.SetReadDeadline(time.Now().Add(wait))
		f := readWSMessage(t, r)
		p := f.GetPush()
		if p.GetMessageId() != strconv.Itoa(i) || !bytes.Equal(p.GetPayload(), payload(i)) {
			t.Fatalf("message %d of %d: PUSH %q of %d bytes, want %d: lost, repeated, out of order or cut", i, sent, p.GetMessageId(), len(p.GetPayload()), i)
		}
	}
	if closing, reason := s.Closing(); closing {
		t.Fatalf("session closing (%s) after a full socket", reason)
	}
}
