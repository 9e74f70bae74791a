package session

import (
	"errors"
	"testing"
	"time"

	poll "github.com/tcpgateway/tcpgateway/test/wait"
)

func TestBudgetShedsAnotherSessionAndCountsItsWriteAsReleasing(t *testing.T) {
	var slow *Session
	var needs []int64
	b := NewBudget(1000, func(need int64) {
		needs = append(needs, need)
		if freed := slow.ShedSlow(); freed < need {
			t.Errorf("shedding the slow session freed %d, want at least %d", freed, need)
		}
	})
	limits := Limits{QueueFrames: 100, QueueBytes: 10000, Budget: b}
	slowPipe := newPipe(true) // stops reading
	slow, slowRec := newSession(slowPipe, limits)
	fast, _ := newSession(newPipe(false), limits)

	if err := slow.Send(make([]byte, 600)); err != nil {
		t.Fatal(err)
	}
	wait(t, slowPipe.entered) // 600 bytes in a write that does not return
	if err := slow.Send(make([]byte, 300)); err != nil {
		t.Fatal(err)
	}
	if got := b.Used(); got != 900 {
		t.Fatalf("used %d, want 900", got)
	}
	// 900 + 200 > 1000: the fast session's send sheds the slow one and is itself accepted.
	if err := fast.Send(make([]byte, 200)); err != nil {
		t.Fatalf("the send that crossed the budget failed: %v", err)
	}
	if len(needs) != 1 || needs[0] != 100+1000/shedHeadroom {
		t.Fatalf("shed asked for %v, want [%d]", needs, 100+1000/shedHeadroom)
	}
	if pending, since, shed := slow.Outbound(); !shed || since == 0 || pending != 600+int64(len(shedError)) {
		t.Fatalf("slow session after shedding: pending %d stalled since %d shed %v", pending, since, shed)
	}
	if err := slow.Send([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send to a shed session = %v, want ErrClosed", err)
	}
	// Its stalled write no longer counts against new sends, so they shed nothing more.
	if err := fast.Send(make([]byte, 200)); err != nil {
		t.Fatal(err)
	}
	if len(needs) != 1 {
		t.Fatalf("shed called again (%v) for bytes already releasing", needs)
	}

	// The client reads again: the write in flight, then the ERROR, then the close.
	slowPipe.gate <- struct{}{}
	wait(t, slowPipe.entered)
	slowPipe.gate <- struct{}{}
	if r := wait(t, slowRec.reasons); r != ReasonSlowConsumer {
		t.Fatalf("closed with %q", r)
	}
	if got := string(lastWrite(slowPipe)); got != string(shedError) {
		t.Fatalf("last frame %q, want the budget's ERROR SLOW_CONSUMER", got)
	}
	wait(t, fast.Flushed())
	// The flusher returns the bytes of its last write just after the close.
	poll.For(t, 5*time.Second, "the budget back to 0", func() bool { return b.Used() == 0 && b.releasing.Load() == 0 })
}

func TestBudgetIsReturnedByAbortAndCloseAfter(t *testing.T) {
	b := NewBudget(1<<20, nil)
	p := newPipe(true)
	s, rec := newSession(p, Limits{QueueFrames: 100, QueueBytes: 1000, Budget: b})
	_ = s.Send(make([]byte, 10))
	wait(t, p.entered)
	_ = s.Send(make([]byte, 20))
	s.CloseAfter(make([]byte, 5), ReasonDraining)
	if got := b.Used(); got != 35 {
		t.Fatalf("used %d, want 35", got)
	}
	s.Abort(ReasonShutdown)
	wait(t, rec.reasons)
	// The write in flight returns its bytes when the closed transport fails it.
	poll.For(t, 5*time.Second, "the budget back to 0", func() bool { return b.Used() == 0 })
}
