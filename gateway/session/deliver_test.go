package session

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDeliverWritesToAnIdleSessionAtOnceWithoutQueueOrBudget(t *testing.T) {
	var f flushedHooks
	budget := NewBudget(1<<20, nil)
	limits := &Limits{QueueFrames: 64, QueueBytes: 1 << 20, Budget: budget}
	k := &socketTransport{room: 1 << 20}
	s := New(k, "", limits, f.hooks(), time.Now())
	var used int64 = -1
	k.during = func() { used = budget.Used() }
	var tally Tally
	for _, frame := range []string{"a1", "b22"} {
		if err := s.Deliver([]byte(frame), &tally); err != nil {
			t.Fatal(err)
		}
	}
	out, nowCalls, writes, _ := k.state()
	if out != "a1b22" || nowCalls != 2 || writes != 0 || f.starts != 0 {
		t.Fatalf("wrote %q in %d WriteNow, %d Write calls, %d flushes started; want each frame in one WriteNow and no flush", out, nowCalls, writes, f.starts)
	}
	if used != 0 || budget.Used() != 0 {
		t.Fatalf("budget held %d bytes during the write, %d after; a frame the socket takes at once is never in flight", used, budget.Used())
	}
	if f.calls != 0 {
		t.Fatal("Flushed called before the tally's Report")
	}
	tally.Report()
	if f.writes != 2 || f.frames != 2 || f.nbytes != 5 {
		t.Fatalf("Flushed sums: %d writes, %d frames, %d bytes; want 2, 2, 5", f.writes, f.frames, f.nbytes)
	}
	select {
	case <-s.Flushed():
	default:
		t.Fatal("the session reports a writer after its frame was written")
	}
	if tally.one[0] != nil {
		t.Fatal("the tally keeps a reference to the frame written")
	}
}

func TestDeliverHandsWhatAFullSocketLeftToAFlushThatWritesItFirstAndKeepsItInTheBudget(t *testing.T) {
	budget := NewBudget(1<<20, nil)
	limits := &Limits{QueueFrames: 64, QueueBytes: 1 << 20, Budget: budget}
	for _, room := range []int{0, 2} { // a full socket; one that takes part of the frame
		k := &socketTransport{room: room}
		var held func()
		hooks := &Hooks{Go: func(fn func()) { held = fn }}
		s := New(k, "", limits, hooks, time.Now())
		if err := s.Deliver([]byte("a1b2c3"), nil); err != nil {
			t.Fatal(err)
		}
		if held == nil {
			t.Fatalf("room %d: no flush started for the rest of the frame", room)
		}
		if u, want := budget.Used(), int64(6-room); u != want {
			t.Fatalf("room %d: budget holds %d bytes, want the %d in flight", room, u, want)
		}
		if pending, stalled, _ := s.Outbound(); pending != int64(6-room) || stalled == 0 {
			t.Fatalf("room %d: Outbound %d pending, stalled since %d; want the rest and a start time", room, pending, stalled)
		}
		// Frames that come while the rest waits go behind it, through the same writer.
		if err := s.Send([]byte("PONG")); err != nil {
			t.Fatal(err)
		}
		if err := s.Deliver([]byte("d4"), nil); err != nil {
			t.Fatal(err)
		}
		held()
		if out, _, _, _ := k.state(); out != "a1b2c3PONGd4" {
			t.Fatalf("room %d: wrote %q; want the frame whole, then the others in order", room, out)
		}
		if u := budget.Used(); u != 0 {
			t.Fatalf("room %d: budget holds %d bytes after everything was written", room, u)
		}
	}
}

func TestDeliverToABusyOrClosingSessionGoesThroughTheQueue(t *testing.T) {
	var f flushedHooks
	limits := &Limits{QueueFrames: 64, QueueBytes: 1 << 20}
	k := &socketTransport{room: 1 << 20}
	s := New(k, "", limits, f.hooks(), time.Now())
	// A batch queued and not woken yet: the wake is owed, so the lone frame must queue
	// behind it (and its Wake writes both), not overtake it.
	queueAll(t, s, "a1", "b22")
	if err := s.Deliver([]byte("c333"), nil); err != nil {
		t.Fatal(err)
	}
	if out, _, _, _ := k.state(); out != "" {
		t.Fatalf("wrote %q before the owed wake", out)
	}
	s.Wake(nil)
	if out, nowCalls, _, _ := k.state(); out != "a1b22c333" || nowCalls != 1 {
		t.Fatalf("wrote %q in %d WriteNow calls; want the three frames in one", out, nowCalls)
	}
	s.CloseAfter([]byte("GOAWAY"), ReasonDraining)
	if err := s.Deliver([]byte("d"), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Deliver on a closing session: %v, want ErrClosed", err)
	}
	if out, _, _, _ := k.state(); out != "a1b22c333GOAWAY" {
		t.Fatalf("wrote %q", out)
	}
}

func TestDeliverOnAFailedSocketClosesTheSessionAsAFailedWrite(t *testing.T) {
	var f flushedHooks
	budget := NewBudget(1<<20, nil)
	k := &socketTransport{room: 1 << 20, failNow: errors.New("broken pipe")}
	s := New(k, "", &Limits{QueueFrames: 64, QueueBytes: 1 << 20, Budget: budget}, f.hooks(), time.Now())
	if err := s.Deliver([]byte("a1"), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, _, closed := k.state(); !closed || len(f.reasons) != 1 || f.reasons[0] != ReasonWriteFailed {
		t.Fatalf("closed %v, reasons %v; want the session closed as %s", closed, f.reasons, ReasonWriteFailed)
	}
	if u := budget.Used(); u != 0 {
		t.Fatalf("budget holds %d bytes of a closed session", u)
	}
}

// A Send racing with Deliver on another goroutine: one writer at a time, every frame whole and
// once, a goroutine's frames in its order, whether the socket takes everything or little.
func TestDeliverAndConcurrentSendsKeepOneWriterAndTheOrder(t *testing.T) {
	for _, room := range []int{1 << 20, 7} {
		budget := NewBudget(1<<20, nil)
		k := &socketTransport{room: room}
		var flushes sync.WaitGroup
		var grow sync.Once
		hooks := &Hooks{Go: func(fn func()) {
			// A full socket makes room once a flush writes (its peer reads).
			grow.Do(func() { k.mu.Lock(); k.room = 1 << 20; k.mu.Unlock() })
			flushes.Add(1)
			go func() { defer flushes.Done(); fn() }()
		}}
		s := New(k, "", &Limits{QueueFrames: 1024, QueueBytes: 1 << 20, Budget: budget}, hooks, time.Now())
		const n = 200
		var senders sync.WaitGroup
		senders.Add(1)
		go func() {
			defer senders.Done()
			for i := range n {
				if err := s.Send(fmt.Appendf(nil, "<s%03d>", i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		var tally Tally
		for i := range n {
			if err := s.Deliver(fmt.Appendf(nil, "<d%03d>", i), &tally); err != nil {
				t.Fatal(err)
			}
		}
		senders.Wait()
		select {
		case <-s.Flushed():
		case <-time.After(10 * time.Second):
			t.Fatal("the session never finished writing")
		}
		flushes.Wait()
		out, _, _, _ := k.state()
		var ds, ss []string
		for _, f := range strings.SplitAfter(out, ">") {
			switch {
			case f == "":
			case len(f) != 6:
				t.Fatalf("room %d: a frame cut or interleaved: %q in %q", room, f, out)
			case f[1] == 'd':
				ds = append(ds, f)
			default:
				ss = append(ss, f)
			}
		}
		for i := range n {
			if ds[i] != fmt.Sprintf("<d%03d>", i) || ss[i] != fmt.Sprintf("<s%03d>", i) {
				t.Fatalf("room %d: frame %d out of order: %q, %q", room, i, ds[i], ss[i])
			}
		}
		if len(ds) != n || len(ss) != n {
			t.Fatalf("room %d: %d delivered, %d sent frames written; want %d each", room, len(ds), len(ss), n)
		}
		if u := budget.Used(); u != 0 {
			t.Fatalf("room %d: budget holds %d bytes after everything was written", room, u)
		}
	}
}
