package session

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// pipeTransport records writes; when gate is non-nil each Write waits for a token from it, which
// lets a test hold the flusher "inside the kernel" like a peer that stopped reading.
type pipeTransport struct {
	mu      sync.Mutex
	writes  [][][]byte
	closed  chan struct{}
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func newPipe(gated bool) *pipeTransport {
	p := &pipeTransport{closed: make(chan struct{}), entered: make(chan struct{}, 100)}
	if gated {
		p.gate = make(chan struct{})
	}
	return p
}

func (p *pipeTransport) Write(bufs [][]byte) error {
	p.entered <- struct{}{}
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-p.closed:
			return errors.New("closed")
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes = append(p.writes, bufs)
	return nil
}

func (p *pipeTransport) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

func (p *pipeTransport) frames() (n int, calls int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.writes {
		n += len(w)
	}
	return n, len(p.writes)
}

type closeRecorder struct {
	reasons chan CloseReason
}

func newSession(p *pipeTransport, limits Limits) (*Session, *closeRecorder) {
	rec := &closeRecorder{reasons: make(chan CloseReason, 4)}
	hooks := &Hooks{Closed: func(_ *Session, r CloseReason) { rec.reasons <- r }}
	return New(p, "127.0.0.1:1", &limits, hooks, time.Now()), rec
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting")
		panic("unreachable")
	}
}

func TestQueuedFramesCoalesceWhileAWriteIsInProgress(t *testing.T) {
	p := newPipe(true)
	s, _ := newSession(p, Limits{QueueFrames: 100, QueueBytes: 1 << 20})

	if err := s.Send([]byte("a")); err != nil {
		t.Fatal(err)
	}
	wait(t, p.entered) // the flusher is now blocked writing "a"
	for _, f := range []string{"b", "c", "d"} {
		if err := s.Send([]byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	p.gate <- struct{}{} // "a" written
	wait(t, p.entered)
	p.gate <- struct{}{} // "b", "c", "d" in one write
	wait(t, s.Flushed())

	if n, calls := p.frames(); n != 4 || calls != 2 {
		t.Fatalf("wrote %d frames in %d calls, want 4 in 2", n, calls)
	}
}

func TestSlowConsumerIsClosedAndMemoryStaysBounded(t *testing.T) {
	p := newPipe(true) // the peer stops reading
	s, rec := newSession(p, Limits{QueueFrames: 3, QueueBytes: 1 << 20})

	if err := s.Send([]byte("0")); err != nil {
		t.Fatal(err)
	}
	wait(t, p.entered)
	for i := 1; i <= 3; i++ {
		if err := s.Send([]byte{byte('0' + i)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if frames, _ := s.Queued(); frames != 3 {
		t.Fatalf("queued %d, want 3", frames)
	}
	if err := s.Send([]byte("4")); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("send past the bound = %v, want ErrSlowConsumer", err)
	}
	// The queue is dropped at once; only the ERROR frame waits behind the write in flight.
	if frames, bytes := s.Queued(); frames != 1 || bytes != len(queueFullError) {
		t.Errorf("queue holds %d frames, %d bytes after the close, want the ERROR only", frames, bytes)
	}
	if err := s.Send([]byte("5")); !errors.Is(err, ErrClosed) {
		t.Errorf("send after close = %v, want ErrClosed", err)
	}

	// The peer reads again: it gets what was in flight, then the ERROR, then the close.
	p.gate <- struct{}{}
	wait(t, p.entered)
	p.gate <- struct{}{}
	if r := wait(t, rec.reasons); r != ReasonSlowConsumer {
		t.Fatalf("closed with %q, want slow_consumer", r)
	}
	last := lastWrite(p)
	if string(last) != string(queueFullError) {
		t.Fatalf("last frame written %q, want the ERROR SLOW_CONSUMER frame", last)
	}
}

func TestSlowConsumerThatNeverReadsIsResetAfterTheGrace(t *testing.T) {
	p := newPipe(true)
	s, rec := newSession(p, Limits{QueueFrames: 100, QueueBytes: 10, SlowCloseGrace: 20 * time.Millisecond})
	_ = s.Send(make([]byte, 1))
	wait(t, p.entered)
	if err := s.Send(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(make([]byte, 3)); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("send past the byte bound = %v", err)
	}
	if r := wait(t, rec.reasons); r != ReasonSlowConsumer {
		t.Fatalf("closed with %q", r)
	}
	wait(t, s.Flushed())
}

func lastWrite(p *pipeTransport) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.writes) == 0 {
		return nil
	}
	w := p.writes[len(p.writes)-1]
	return w[len(w)-1]
}

func TestCloseAfterWritesEverythingQueuedThenTheLastFrame(t *testing.T) {
	p := newPipe(false)
	s, rec := newSession(p, Limits{QueueFrames: 10, QueueBytes: 1 << 20})
	for _, f := range []string{"a", "b"} {
		if err := s.Send([]byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	if !s.CloseAfter([]byte("goaway"), ReasonDraining) {
		t.Fatal("CloseAfter refused on an open session")
	}
	if s.CloseAfter(nil, ReasonIdleTimeout) {
		t.Error("second CloseAfter accepted")
	}
	if r := wait(t, rec.reasons); r != ReasonDraining {
		t.Fatalf("closed with %q, want draining", r)
	}
	p.mu.Lock()
	var got []string
	for _, w := range p.writes {
		for _, b := range w {
			got = append(got, string(b))
		}
	}
	p.mu.Unlock()
	if len(got) != 3 || got[2] != "goaway" {
		t.Fatalf("wrote %q, want a, b, then goaway last", got)
	}
}

func TestAbortUnblocksAStuckFlusher(t *testing.T) {
	p := newPipe(true)
	s, rec := newSession(p, Limits{QueueFrames: 10, QueueBytes: 1 << 20})
	_ = s.Send([]byte("x"))
	wait(t, p.entered)
	s.Abort(ReasonIdleTimeout)
	if r := wait(t, rec.reasons); r != ReasonIdleTimeout {
		t.Fatalf("closed with %q", r)
	}
	wait(t, s.Flushed())
	select {
	case r := <-rec.reasons:
		t.Fatalf("closed twice, second reason %q", r)
	default:
	}
}
