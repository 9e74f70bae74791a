package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestWSTakenMapsWireBytesOntoFrames: what a writev of messages took (headers included) is
// mapped onto the frames' bytes and what was sent of a message it cut.
func TestWSTakenMapsWireBytesOntoFrames(t *testing.T) {
	f := func(n int) []byte { return make([]byte, n) }
	frames := [][]byte{f(5), f(200), f(70000)} // headers 2, 4 and 10 bytes
	for _, c := range []struct {
		wrote, n int
		cut      uint8
	}{
		{0, 0, 0},
		{1, 0, 1},              // in the first header
		{2, 0, cutPayload},     // the first header, none of its frame
		{4, 2, cutPayload},     // in the first frame
		{7, 5, 0},              // the first message, whole
		{10, 5, 3},             // in the second header
		{11, 5, cutPayload},    // the second header
		{211, 205, 0},          // two messages
		{220, 205, 9},          // in the 10-byte header
		{221, 205, cutPayload}, // the 10-byte header
		{221 + 69999, 70204, cutPayload},
		{221 + 70000, 70205, 0}, // everything
	} {
		n, cut := wsTaken(frames, c.wrote)
		if n != c.n || cut != c.cut {
			t.Errorf("wrote %d: n %d, cut %d; want %d, %d", c.wrote, n, cut, c.n, c.cut)
		}
	}
}

// wsPair is a wsDirect on one end of a loopback TCP connection, upgraded, and the peer's end,
// both with small socket buffers so that a few kilobytes fill them.
func wsPair(t *testing.T) (*wsDirect, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.(*net.TCPConn).SetWriteBuffer(64 << 10)
	_ = peer.(*net.TCPConn).SetReadBuffer(64 << 10)
	k, tr := newWSConn(nil, nc, nil)
	d, ok := tr.(*wsDirect)
	if !ok {
		t.Fatalf("transport of a plaintext TCP connection is %T, want *wsDirect", tr)
	}
	k.setUp(true)
	return d, peer.(*net.TCPConn)
}

// wsFrame is frame i of a test: its index, then bytes that depend on it, of a length that
// gives each header size (2 bytes below 126, 4, rarely 10).
func wsFrame(rng *rand.Rand, i int) []byte {
	n := 4 + rng.IntN(40)
	switch r := rng.IntN(1000); {
	case r < 100:
		n = 126 + rng.IntN(300)
	case r == 100:
		n = 65536 + rng.IntN(1000)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, n), uint32(i))
	for j := 4; j < n; j++ {
		b = append(b, byte(i*7+j))
	}
	return b
}

// wsReader reads the server's messages on the peer's end strictly: every one binary, final,
// unmasked, and exactly the next frame expected; pongs are counted. It reads only up to the
// frame it is told to, so that the writer can fill the socket meanwhile.
type wsReader struct {
	r     *bufio.Reader
	want  [][]byte // what the writer sent, in order; the reader's copy up to upto
	next  int
	pongs int
}

func (p *wsReader) readUpTo(upto int) error {
	for p.next < upto {
		h, err := ws.ReadHeader(p.r)
		if err != nil {
			return fmt.Errorf("message %d: header: %w", p.next, err)
		}
		if h.OpCode == ws.OpPong && h.Fin && !h.Masked {
			p.pongs++
			if _, err := io.CopyN(io.Discard, p.r, h.Length); err != nil {
				return err
			}
			continue
		}
		want := p.want[p.next]
		if h.OpCode != ws.OpBinary || !h.Fin || h.Masked || h.Length != int64(len(want)) {
			return fmt.Errorf("message %d: opcode %d fin %v masked %v length %d, want a binary message of %d bytes: bytes skipped or repeated", p.next, h.OpCode, h.Fin, h.Masked, h.Length, len(want))
		}
		got := make([]byte, h.Length)
		if _, err := io.ReadFull(p.r, got); err != nil {
			return fmt.Errorf("message %d: %w", p.next, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("message %d: payload differs: bytes skipped or repeated", p.next)
		}
		p.next++
	}
	return nil
}

// wsRest is session.rest: what remains of bufs once n of their bytes are written.
func wsRest(bufs [][]byte, n int) [][]byte {
	for n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	bufs[0] = bufs[0][n:]
	return bufs
}

// TestWSWriteNowCutMessagesContinueByteExact fills a WebSocket connection whose peer does not
// read with WriteNow until the socket takes part of a batch, then, as a session hands the
// rest to its flusher, sends the rest with Write while the peer reads everything sent. The
// peer must get every message once, whole and in order; the test goes on until the kernel
// stopped within a message at least 20 times (and a pong sent while a message was cut arrives
// only after it, not in its middle). Linux on loopback stops after a header or in a frame,
// not within a header: TestWSWriteContinuesACutHeader covers that.
func TestWSWriteNowCutMessagesContinueByteExact(t *testing.T) {
	d, peer := wsPair(t)
	rng := rand.New(rand.NewPCG(1, 2))
	p := &wsReader{r: bufio.NewReaderSize(peer, 64<<10)}
	var inHeader, inFrame, pongs int
	deadline := time.Now().Add(20 * time.Second)
	for round := 0; round < 5000 && inHeader+inFrame < 20 && time.Now().Before(deadline); round++ {
		// Fill: WriteNow until it takes less than a whole batch.
		var rest [][]byte
		for fill := 0; rest == nil && fill < 10000; fill++ {
			batch := make([][]byte, 1+rng.IntN(writeNowFrames+8)) // beyond writeNowFrames: the rest goes to Write
			total := 0
			for i := range batch {
				batch[i] = wsFrame(rng, len(p.want))
				p.want = append(p.want, batch[i])
				total += len(batch[i])
			}
			n, err := d.WriteNow(batch)
			if err != nil {
				t.Fatalf("round %d: WriteNow: %v", round, err)
			}
			if n < total {
				rest = wsRest(batch, n)
			}
		}
		if rest == nil {
			t.Fatalf("round %d: the socket never filled", round)
		}
		switch c := d.cut; {
		case c == cutPayload:
			inFrame++
		case c != 0:
			inHeader++
		}
		pong := make(chan bool, 1)
		if d.cut != 0 && pongs == 0 {
			// A pong now must wait for the rest: await its waiting, then let the rest go.
			pongs++
			go func() { pong <- d.control(ws.OpPong, []byte("p")) }()
			waitFor(t, "the pong to wait for the cut message", func() bool {
				d.wmu.Lock()
				defer d.wmu.Unlock()
				return d.cutDone != nil
			})
		} else {
			pong <- true
		}
		read := make(chan error, 1)
		upto := len(p.want)
		go func() { read <- p.readUpTo(upto) }()
		_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := d.Write(rest); err != nil {
			t.Fatalf("round %d: Write of the rest: %v", round, err)
		}
		if !<-pong {
			t.Fatalf("round %d: the pong was not written", round)
		}
		if err := <-read; err != nil {
			t.Fatalf("round %d (cut %d): %v", round, d.cut, err)
		}
	}
	t.Logf("%d messages; cuts in a header %d, in a frame %d", len(p.want), inHeader, inFrame)
	if inHeader+inFrame < 20 {
		t.Fatalf("cuts in a header %d, in a frame %d: want 20 within the bound", inHeader, inFrame)
	}
	// The pong went out after a cut message's rest; read it (it may follow the last message).
	if p.pongs == 0 && pongs > 0 {
		_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		h, err := ws.ReadHeader(p.r)
		if err != nil || h.OpCode != ws.OpPong {
			t.Fatalf("after the last message: %v %v, want the pong", h, err)
		}
	}
}

// TestWSWriteContinuesACutHeader: after a WriteNow that sent only part of a message's header
// (cut), Write sends the rest of that header, then the frame and the messages after it. The
// header's first bytes are written here as WriteNow would have, for every length of every
// header size; the peer must read each message whole.
func TestWSWriteContinuesACutHeader(t *testing.T) {
	d, peer := wsPair(t)
	p := &wsReader{r: bufio.NewReaderSize(peer, 64<<10)}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, size := range []int{100, 1000, 70000} {
		for sent := 1; sent < wsHeaderLen(size); sent++ {
			b := wsFrame(rng, len(p.want))
			b = append(b, make([]byte, size-len(b))...)[:size]
			next := wsFrame(rng, len(p.want)+1)
			p.want = append(p.want, b, next)
			d.wmu.Lock()
			_, err := d.raw.Write(appendWSHeader(nil, ws.OpBinary, size)[:sent])
			d.cut = uint8(sent)
			d.wmu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			read := make(chan error, 1)
			upto := len(p.want)
			go func() { read <- p.readUpTo(upto) }()
			_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
			if err := d.Write([][]byte{b, next}); err != nil {
				t.Fatal(err)
			}
			if err := <-read; err != nil {
				t.Fatalf("%d of the header of a %d-byte frame sent before: %v", sent, size, err)
			}
			if d.cut != 0 {
				t.Fatalf("cut %d after the rest was written", d.cut)
			}
		}
	}
}

// TestWSCloseFrameNotAfterACutMessage: once WriteNow cut a message, a close frame cannot follow
// it (the peer would read it as the message's bytes): Close's close frame is given up, and
// the flusher's Write of the rest, which comes after the close, fails.
func TestWSCloseFrameNotAfterACutMessage(t *testing.T) {
	d, peer := wsPair(t)
	rng := rand.New(rand.NewPCG(3, 4))
	var rest [][]byte
	drain := make([]byte, 1000)
	for i := 0; d.cut == 0 && i < 100000; i++ {
		b := wsFrame(rng, i)
		n, err := d.WriteNow([][]byte{b})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && d.cut == 0 {
			// Full between two messages: make room for a few bytes more and try again.
			_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := peer.Read(drain[:1+rng.IntN(len(drain))]); err != nil {
				t.Fatal(err)
			}
		}
		if d.cut != 0 {
			rest = wsRest([][]byte{b}, n)
		}
	}
	if rest == nil {
		t.Fatal("the kernel cut no message within the bound")
	}
	if d.control(ws.OpClose, ws.NewCloseFrameBody(wsGoingAway, "")) {
		t.Fatal("a close frame was written after a cut message")
	}
	if err := d.Write(rest); err == nil {
		t.Fatal("the rest was written after the close frame was given up")
	}
	if d.control(ws.OpPong, nil) {
		t.Fatal("a pong was written after the close frame was given up")
	}
}

// TestWSWriteNowDoesNotWaitForAControlFrame: while a control frame is being written (wmu held:
// a pong into a full socket may wait up to closeLinger), WriteNow writes nothing and returns at
// once, leaving the batch to the flusher; the deliverer that calls it never waits.
func TestWSWriteNowDoesNotWaitForAControlFrame(t *testing.T) {
	d, _ := wsPair(t)
	d.wmu.Lock()
	n, err := d.WriteNow([][]byte{[]byte("frame")})
	d.wmu.Unlock()
	if n != 0 || err != nil || d.cut != 0 {
		t.Fatalf("WriteNow under a control frame's write: %d, %v, cut %d; want 0, nil, 0", n, err, d.cut)
	}
	if n, err := d.WriteNow([][]byte{[]byte("frame")}); n != 5 || err != nil {
		t.Fatalf("WriteNow after it: %d, %v; want 5, nil", n, err)
	}
}

// waitFor polls cond (a state with no event to await) every millisecond for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 10000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
