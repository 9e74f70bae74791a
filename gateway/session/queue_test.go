package session

import (
	"fmt"
	"testing"
	"time"
)

// inlineHooks run every flush on the caller's goroutine and count the flush starts, so that a
// test sees each write as soon as the call that started it returns.
func inlineHooks(starts *int) *Hooks {
	return &Hooks{Go: func(f func()) { *starts++; f() }}
}

func frame(i int) []byte { return []byte(fmt.Sprintf("frame-%03d", i)) }

// written is every frame the transport wrote, in order, and the number of writes.
func written(p *pipeTransport) ([]string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, w := range p.writes {
		for _, b := range w {
			out = append(out, string(b))
		}
	}
	return out, len(p.writes)
}

func TestQueueDefersTheFlushUntilWakeAndWakesOnce(t *testing.T) {
	var starts int
	limits := &Limits{QueueFrames: 1024, QueueBytes: 1 << 20}
	pipes := make([]*pipeTransport, 3)
	sessions := make([]*Session, 3)
	for i := range sessions {
		pipes[i] = newPipe(false)
		sessions[i] = New(pipes[i], "", limits, inlineHooks(&starts), time.Now())
	}
	// A batch of 5 records, each queued on every session, as the downlink queues them.
	owed := 0
	for r := range 5 {
		for _, s := range sessions {
			wake, err := s.Queue(frame(r))
			if err != nil {
				t.Fatal(err)
			}
			if wake != (r == 0) {
				t.Fatalf("record %d: Queue owes a wake %v, want %v (only the first frame of the batch)", r, wake, r == 0)
			}
			if wake {
				owed++
			}
		}
	}
	if owed != 3 || starts != 0 {
		t.Fatalf("%d wakes owed, %d flushes started before any Wake; want 3 and 0", owed, starts)
	}
	for i, s := range sessions {
		s.Wake(nil)
		s.Wake(nil) // a second Wake owes nothing: no second flush
		got, writes := written(pipes[i])
		if writes != 1 || fmt.Sprint(got) != "[frame-000 frame-001 frame-002 frame-003 frame-004]" {
			t.Fatalf("session %d: %d writes of %v; want one write of the 5 frames in order", i, writes, got)
		}
	}
	if starts != 3 {
		t.Fatalf("%d flushes started; want one per session", starts)
	}
}

func TestSendDoesNotWaitForAWakeAnotherCallerOwes(t *testing.T) {
	var starts int
	p := newPipe(false)
	s := New(p, "", &Limits{QueueFrames: 1024, QueueBytes: 1 << 20}, inlineHooks(&starts), time.Now())
	if wake, err := s.Queue(frame(0)); !wake || err != nil {
		t.Fatalf("Queue = %v, %v; want a wake owed", wake, err)
	}
	// A RESPONSE sent while a batch is being queued: flushed now, behind the batch's frame.
	if err := s.Send(frame(1)); err != nil {
		t.Fatal(err)
	}
	if got, writes := written(p); writes != 1 || fmt.Sprint(got) != "[frame-000 frame-001]" {
		t.Fatalf("after Send: %d writes of %v; want one write of both frames in order", writes, got)
	}
	s.Wake(nil) // the batch's wake finds the flush done: nothing to start
	if starts != 1 {
		t.Fatalf("%d flushes started; want 1", starts)
	}
	// Queued while no flush runs and none is owed: a new wake is owed.
	if wake, _ := s.Queue(frame(2)); !wake {
		t.Fatal("Queue on an idle session owes no wake")
	}
	s.Wake(nil)
	if got, _ := written(p); fmt.Sprint(got) != "[frame-000 frame-001 frame-002]" {
		t.Fatalf("wrote %v", got)
	}
}

func TestQueueFlushesAtOnceAtHalfTheQueueBound(t *testing.T) {
	var starts int
	p := newPipe(false)
	s := New(p, "", &Limits{QueueFrames: 8, QueueBytes: 1 << 20}, inlineHooks(&starts), time.Now())
	for i := range 3 {
		if _, err := s.Queue(frame(i)); err != nil {
			t.Fatal(err)
		}
	}
	if starts != 0 {
		t.Fatalf("flushed at 3 of 8 frames")
	}
	// The 4th frame is half the bound: flushed without waiting for the wake.
	if _, err := s.Queue(frame(3)); err != nil {
		t.Fatal(err)
	}
	if got, writes := written(p); starts != 1 || writes != 1 || len(got) != 4 {
		t.Fatalf("at half the bound: %d starts, %d writes of %v; want the 4 frames flushed", starts, writes, got)
	}
	s.Wake(nil) // owed by the first Queue, already started: nothing more
	if starts != 1 {
		t.Fatalf("%d flushes started; want 1", starts)
	}
}

func TestQueueFlushesAtOnceWhenTheBudgetIsHalfUsed(t *testing.T) {
	var starts int
	budget := NewBudget(100, nil)
	limits := &Limits{QueueFrames: 1024, QueueBytes: 1 << 20, Budget: budget}
	// Another session holds 45 bytes it cannot write (no Wake yet).
	other := New(newPipe(false), "", limits, inlineHooks(&starts), time.Now())
	if wake, _ := other.Queue(make([]byte, 45)); !wake {
		t.Fatal("no wake owed")
	}
	p := newPipe(false)
	s := New(p, "", limits, inlineHooks(&starts), time.Now())
	if wake, _ := s.Queue(make([]byte, 5)); !wake || starts != 0 {
		t.Fatalf("50 of 100 bytes used: wake owed %v, %d starts; want a deferred flush", wake, starts)
	}
	// 51 of 100: over half the budget, this session's frames go out now.
	if _, err := s.Queue(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if _, writes := written(p); starts != 1 || writes != 1 {
		t.Fatalf("budget over half used: %d starts, %d writes; want the queue flushed", starts, writes)
	}
	if budget.Used() != 45 {
		t.Fatalf("budget used %d after the flush; want the other session's 45", budget.Used())
	}
	other.Wake(nil)
	if budget.Used() != 0 {
		t.Fatalf("budget used %d after every flush", budget.Used())
	}
}

func TestCloseAfterDoesNotWaitForAnOwedWake(t *testing.T) {
	var starts int
	p := newPipe(false)
	closed := make(chan CloseReason, 1)
	hooks := inlineHooks(&starts)
	hooks.Closed = func(_ *Session, r CloseReason) { closed <- r }
	s := New(p, "", &Limits{QueueFrames: 1024, QueueBytes: 1 << 20}, hooks, time.Now())
	if wake, _ := s.Queue(frame(0)); !wake {
		t.Fatal("no wake owed")
	}
	if !s.CloseAfter(frame(1), ReasonDraining) {
		t.Fatal("CloseAfter refused")
	}
	if got, _ := written(p); fmt.Sprint(got) != "[frame-000 frame-001]" {
		t.Fatalf("wrote %v; want the queued frame then the last one", got)
	}
	if r := wait(t, closed); r != ReasonDraining {
		t.Fatalf("closed as %s", r)
	}
	s.Wake(nil)
	if starts != 1 {
		t.Fatalf("%d flushes started; want 1", starts)
	}
	select {
	case <-s.Flushed():
	default:
		t.Fatal("Flushed not closed after the close")
	}
}

func TestQueueOverflowStillClosesTheSlowConsumer(t *testing.T) {
	var starts int
	p := newPipe(true) // the peer reads nothing: the first write never returns
	s := New(p, "", &Limits{QueueFrames: 4, QueueBytes: 1 << 20}, &Hooks{Go: func(f func()) { starts++; go f() }}, time.Now())
	if wake, _ := s.Queue(frame(0)); !wake {
		t.Fatal("no wake owed")
	}
	s.Wake(nil)
	wait(t, p.entered) // the flusher is stuck in its write with frame 0
	var err error
	for i := 1; i <= 5 && err == nil; i++ {
		_, err = s.Queue(frame(i))
	}
	if err != ErrSlowConsumer {
		t.Fatalf("Queue past the bound: %v; want ErrSlowConsumer", err)
	}
	if closing, reason := s.Closing(); !closing || reason != ReasonSlowConsumer {
		t.Fatalf("closing %v %s; want slow_consumer", closing, reason)
	}
	s.Abort(ReasonSlowConsumer)
}
