package session

import (
	"sync"
	"time"
)

// Wheel is a hashed timing wheel for deadlines that move (idle timeouts) or are usually
// cancelled (handshake timeouts). Scheduling is O(1) and nothing scans all sessions: a due
// timer's callback checks the real deadline and either fires or asks to be re-armed, so an
// active session costs one callback per timeout period, not one per tick.
type Wheel struct {
	tick time.Duration

	mu    sync.Mutex // guards everything below
	slots [][]*Timer
	pos   int       // slot that fires next
	now   time.Time // time of the last tick
}

// Timer is an entry of a Wheel. Due is called from the wheel's goroutine, without locks held;
// it returns the next time to be called, or the zero time when done.
type Timer struct {
	Due func(now time.Time) (next time.Time)
}

// NewWheel makes a wheel with the given tick (resolution) and span; deadlines beyond the span
// are re-armed on the way, which costs one extra callback per span.
func NewWheel(tick, span time.Duration, now time.Time) *Wheel {
	n := int(span/tick) + 1
	return &Wheel{tick: tick, slots: make([][]*Timer, n), now: now}
}

// Schedule arms t to be called at or soon after at (at most one tick late).
func (w *Wheel) Schedule(t *Timer, at time.Time) {
	w.mu.Lock()
	w.scheduleLocked(t, at)
	w.mu.Unlock()
}

func (w *Wheel) scheduleLocked(t *Timer, at time.Time) {
	ticks := int((at.Sub(w.now) + w.tick - 1) / w.tick)
	if ticks < 1 {
		ticks = 1
	}
	if ticks > len(w.slots)-1 {
		ticks = len(w.slots) - 1
	}
	i := (w.pos + ticks - 1) % len(w.slots)
	w.slots[i] = append(w.slots[i], t)
}

// Advance fires the slot due at now. Call it once per tick (Run does).
func (w *Wheel) Advance(now time.Time) {
	w.mu.Lock()
	due := w.slots[w.pos]
	w.slots[w.pos] = nil
	w.pos = (w.pos + 1) % len(w.slots)
	w.now = now
	w.mu.Unlock()

	for _, t := range due {
		if next := t.Due(now); !next.IsZero() {
			w.Schedule(t, next)
		}
	}
}

// Run advances the wheel on every tick until done is closed.
func (w *Wheel) Run(ticks <-chan time.Time, done <-chan struct{}) {
	for {
		select {
		case now := <-ticks:
			w.Advance(now)
		case <-done:
			return
		}
	}
}

// Tick is the wheel's resolution.
func (w *Wheel) Tick() time.Duration { return w.tick }
