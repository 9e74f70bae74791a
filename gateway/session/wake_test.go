package session

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

// socketTransport is a Transport that can also write without blocking (WriterNow), like the
// server's netpoll socket: WriteNow takes at most room bytes (a full socket takes 0) and
// fails with failNow; during calls a test hook inside it, as if another goroutine acted while
// the system call ran. Every byte written, by WriteNow or by the flusher's Write, goes to out
// in the order written.
type socketTransport struct {
	mu       sync.Mutex
	out      bytes.Buffer
	room     int
	failNow  error
	during   func()
	nowCalls int
	writes   int // blocking Writes (the flusher's)
	closed   bool
}

func (k *socketTransport) WriteNow(bufs [][]byte) (int, error) {
	k.mu.Lock()
	during := k.during
	k.during = nil
	k.nowCalls++
	if k.failNow != nil {
		k.mu.Unlock()
		return 0, k.failNow
	}
	n := 0
	for _, b := range bufs {
		take := min(len(b), k.room-n)
		k.out.Write(b[:take])
		n += take
	}
	k.room -= n
	k.mu.Unlock()
	if during != nil {
		during()
	}
	return n, nil
}

func (k *socketTransport) Write(bufs [][]byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.writes++
	for _, b := range bufs {
		k.out.Write(b)
	}
	return nil
}

func (k *socketTransport) Close() error {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	return nil
}

func (k *socketTransport) state() (out string, nowCalls, writes int, closed bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.out.String(), k.nowCalls, k.writes, k.closed
}

// flushedHooks counts flush goroutines started (run inline, so their writes are done when the
// call that started them returns), Flushed calls and their sums, and close reasons.
type flushedHooks struct {
	starts                        int
	calls, writes, frames, nbytes int
	reasons                       []CloseReason
}

func (f *flushedHooks) hooks() *Hooks {
	return &Hooks{
		Go: func(fn func()) { f.starts++; fn() },
		Flushed: func(writes, frames, bytes int) {
			f.calls++
			f.writes += writes
			f.frames += frames
			f.nbytes += bytes
		},
		Closed: func(_ *Session, r CloseReason) { f.reasons = append(f.reasons, r) },
	}
}

func queueAll(t *testing.T, s *Session, frames ...string) (owed bool) {
	t.Helper()
	for i, f := range frames {
		wake, err := s.Queue([]byte(f))
		if err != nil {
			t.Fatal(err)
		}
		if wake != (i == 0) {
			t.Fatalf("Queue %d owes a wake: %v", i, wake)
		}
		owed = owed || wake
	}
	return owed
}

func TestWakeWritesABatchOnTheCallersGoroutineAndReportsItOncePerTally(t *testing.T) {
	var f flushedHooks
	hooks := f.hooks()
	budget := NewBudget(1<<20, nil)
	limits := &Limits{QueueFrames: 64, QueueBytes: 1 << 20, Budget: budget}
	var tally Tally
	var sessions []*Session
	var socks []*socketTransport
	for range 3 {
		k := &socketTransport{room: 1 << 20}
		s := New(k, "", limits, hooks, time.Now())
		queueAll(t, s, "a1", "b22", "c333")
		sessions, socks = append(sessions, s), append(socks, k)
	}
	for _, s := range sessions {
		s.Wake(&tally)
	}
	for i, k := range socks {
		out, nowCalls, writes, _ := k.state()
		if out != "a1b22c333" || nowCalls != 1 || writes != 0 {
			t.Fatalf("session %d: wrote %q in %d WriteNow and %d Write calls; want the batch in one WriteNow", i, out, nowCalls, writes)
		}
		select {
		case <-sessions[i].Flushed():
		default:
			t.Fatalf("session %d still flushing after its batch was written", i)
		}
	}
	if f.starts != 0 {
		t.Fatalf("%d flush goroutines started; a batch the sockets take needs none", f.starts)
	}
	if f.calls != 0 {
		t.Fatalf("Flushed called %d times before the tally's Report", f.calls)
	}
	tally.Report()
	if f.calls != 1 || f.writes != 3 || f.frames != 9 || f.nbytes != 27 {
		t.Fatalf("Flushed: %d calls, %d writes, %d frames, %d bytes; want 1, 3, 9, 27", f.calls, f.writes, f.frames, f.nbytes)
	}
	if u := budget.Used(); u != 0 {
		t.Fatalf("budget holds %d bytes after every frame was written", u)
	}
	// The next batch starts from an idle session again: Queue owes a new wake.
	if !queueAll(t, sessions[0], "d4444") {
		t.Fatal("no wake owed on a session whose inline write ended")
	}
}

func TestWakeHandsWhatAFullSocketLeftToAFlushThatWritesItFirst(t *testing.T) {
	var f flushedHooks
	budget := NewBudget(1<<20, nil)
	limits := &Limits{QueueFrames: 64, QueueBytes: 1 << 20, Budget: budget}
	// The socket takes 4 bytes: "a1" and half of "b22".
	k := &socketTransport{room: 4}
	s := New(k, "", limits, f.hooks(), time.Now())
	queueAll(t, s, "a1", "b22", "c333")
	var inFlight int64
	k.during = func() {
		// While the system call runs, the deliverer's lock is not held: a Send queues more,
		// which must go out after the batch, and must not start a second writer.
		if err := s.Send([]byte("PONG")); err != nil {
			t.Error(err)
		}
	}
	var tally Tally
	s.Wake(&tally)
	inFlight = budget.Used()
	out, nowCalls, writes, _ := k.state()
	if out != "a1b22c333PONG" {
		t.Fatalf("wrote %q; want the batch in order, then the frame sent meanwhile", out)
	}
	if nowCalls != 1 || writes != 2 || f.starts != 1 {
		t.Fatalf("%d WriteNow, %d Write calls, %d flushes started; want 1, 2 (the rest, then the PONG), 1", nowCalls, writes, f.starts)
	}
	tally.Report()
	if f.writes != 3 || f.frames != 4 || f.nbytes != 13 {
		t.Fatalf("Flushed sums: %d writes, %d frames, %d bytes; want 3, 4 (a frame cut by the full socket counted once), 13", f.writes, f.frames, f.nbytes)
	}
	if inFlight != 0 {
		t.Fatalf("budget holds %d bytes once everything was written", inFlight)
	}
}

func TestWakeKeepsTheRestOfAFullSocketsWriteInTheBudgetUntilItIsWritten(t *testing.T) {
	budget := NewBudget(1<<20, nil)
	limits := &Limits{QueueFrames: 64, QueueBytes: 1 << 20, Budget: budget}
	k := &socketTransport{room: 3}
	// The flush goroutine is held until the test lets it run, as a peer that reads nothing.
	var held func()
	hooks := &Hooks{Go: func(fn func()) { held = fn }}
	s := New(k, "", limits, hooks, time.Now())
	queueAll(t, s, "a1", "b22", "c333")
	s.Wake(nil)
	if held == nil {
		t.Fatal("no flush started for what the full socket left")
	}
	if u := budget.Used(); u != 6 {
		t.Fatalf("budget holds %d bytes while 6 wait in the flush; written bytes must leave it and the rest stay", u)
	}
	if pending, stalled, _ := s.Outbound(); pending != 6 || stalled == 0 {
		t.Fatalf("Outbound: %d bytes pending, stalled since %d; want 6 and a start time, so that shedding sees the stalled write", pending, stalled)
	}
	if wake, err := s.Queue([]byte("d")); err != nil || wake {
		t.Fatalf("Queue during the flush: wake %v, err %v; want it to join the running flush", wake, err)
	}
	held()
	if out, _, _, _ := k.state(); out != "a1b22c333d" {
		t.Fatalf("wrote %q", out)
	}
	if u := budget.Used(); u != 0 {
		t.Fatalf("budget holds %d bytes after everything was written", u)
	}
}

func TestWakeOnAFailedSocketClosesTheSessionAsAFailedWrite(t *testing.T) {
	var f flushedHooks
	budget := NewBudget(1<<20, nil)
	limits := &Limits{QueueFrames: 64, QueueBytes: 1 << 20, Budget: budget}
	k := &socketTransport{room: 1 << 20, failNow: errors.New("connection reset by peer")}
	s := New(k, "", limits, f.hooks(), time.Now())
	queueAll(t, s, "a1", "b22")
	s.Wake(nil)
	if _, _, _, closed := k.state(); !closed {
		t.Fatal("transport not closed after a failed write")
	}
	if len(f.reasons) != 1 || f.reasons[0] != ReasonWriteFailed {
		t.Fatalf("close reasons %v, want [%s]", f.reasons, ReasonWriteFailed)
	}
	if u := budget.Used(); u != 0 {
		t.Fatalf("budget holds %d bytes of a closed session", u)
	}
	select {
	case <-s.Flushed():
	default:
		t.Fatal("a closed session still reports a flush running")
	}
	if _, err := s.Queue([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Queue on the closed session: %v, want ErrClosed", err)
	}
}

func TestWakeLeavesACloseThatCameDuringItsWriteToAFlushWhichWritesTheLastFrame(t *testing.T) {
	var f flushedHooks
	limits := &Limits{QueueFrames: 64, QueueBytes: 1 << 20}
	k := &socketTransport{room: 1 << 20}
	s := New(k, "", limits, f.hooks(), time.Now())
	queueAll(t, s, "a1", "b22")
	k.during = func() {
		// A drain's GOAWAY while the batch is in the kernel: CloseAfter finds a writer at work.
		if !s.CloseAfter([]byte("GOAWAY"), ReasonDraining) {
			t.Error("CloseAfter refused")
		}
	}
	s.Wake(nil)
	out, _, _, closed := k.state()
	if out != "a1b22GOAWAY" || !closed {
		t.Fatalf("wrote %q, closed %v; want the batch, then GOAWAY, then the close", out, closed)
	}
	if len(f.reasons) != 1 || f.reasons[0] != ReasonDraining {
		t.Fatalf("close reasons %v, want [%s]", f.reasons, ReasonDraining)
	}
}

func TestWakeWithoutWriteNowStartsAFlushForTheWholeBatch(t *testing.T) {
	var f flushedHooks
	p := newPipe(false)
	s := New(p, "", &Limits{QueueFrames: 64, QueueBytes: 1 << 20}, f.hooks(), time.Now())
	queueAll(t, s, "a1", "b22")
	s.Wake(nil)
	if n, calls := p.frames(); n != 2 || calls != 1 || f.starts != 1 {
		t.Fatalf("%d frames in %d writes, %d flushes started; want 2, 1, 1 (a TLS stream has no WriteNow)", n, calls, f.starts)
	}
}

func TestRestCutsTheBatchAtTheBytesWritten(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{0, []string{"a1", "b22", "c333"}},
		{1, []string{"1", "b22", "c333"}},
		{2, []string{"b22", "c333"}},
		{4, []string{"2", "c333"}},
		{8, []string{"3"}},
	} {
		bufs := [][]byte{[]byte("a1"), []byte("b22"), []byte("c333")}
		var got []string
		for _, b := range rest(bufs, tc.n) {
			got = append(got, string(b))
		}
		if len(got) != len(tc.want) {
			t.Fatalf("rest after %d bytes: %q, want %q", tc.n, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("rest after %d bytes: %q, want %q", tc.n, got, tc.want)
			}
		}
	}
}
