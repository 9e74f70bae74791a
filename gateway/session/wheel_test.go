package session

import (
	"testing"
	"time"
)

func TestWheelFiresOnceDueAndReArmsMovedDeadlines(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := NewWheel(time.Second, 10*time.Second, t0)
	var fired []time.Time
	deadline := t0.Add(3 * time.Second)
	timer := &Timer{Due: func(now time.Time) time.Time {
		if now.Before(deadline) {
			return deadline // activity moved the deadline: re-arm
		}
		fired = append(fired, now)
		return time.Time{}
	}}
	w.Schedule(timer, deadline)

	now := t0
	step := func(n int) {
		for i := 0; i < n; i++ {
			now = now.Add(time.Second)
			w.Advance(now)
		}
	}
	step(2)
	if len(fired) != 0 {
		t.Fatalf("fired early at %v", fired)
	}
	deadline = t0.Add(5 * time.Second) // the session was active
	step(1)
	if len(fired) != 0 {
		t.Fatalf("fired at %v despite the moved deadline", fired)
	}
	step(2)
	if len(fired) != 1 || fired[0] != t0.Add(5*time.Second) {
		t.Fatalf("fired at %v, want once at +5s", fired)
	}
	step(20)
	if len(fired) != 1 {
		t.Fatalf("fired %d times, want once", len(fired))
	}
}

func TestWheelHandlesDeadlinesBeyondItsSpan(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := NewWheel(time.Second, 4*time.Second, t0)
	deadline := t0.Add(30 * time.Second)
	calls, firedAt := 0, time.Time{}
	w.Schedule(&Timer{Due: func(now time.Time) time.Time {
		calls++
		if now.Before(deadline) {
			return deadline
		}
		firedAt = now
		return time.Time{}
	}}, deadline)
	now := t0
	for i := 0; i < 40; i++ {
		now = now.Add(time.Second)
		w.Advance(now)
	}
	if firedAt != deadline {
		t.Fatalf("fired at %v, want %v", firedAt, deadline)
	}
	if calls > 10 {
		t.Errorf("%d callbacks for one 30s deadline on a 4s wheel, want about 30/4", calls)
	}
}
