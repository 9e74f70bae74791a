package session

import (
	"sync"
	"sync/atomic"
)

// Budget bounds the outbound bytes of every session of a server together: bytes accepted by
// Send (or CloseAfter) and not yet written to the socket, whether still queued or in a write
// that has not returned. One Budget is shared by all sessions.
//
// The hot path is one atomic add per frame. Only a send that takes the total over the limit
// calls the owner's shed function, under a mutex so that one caller sheds at a time; it
// closes the slowest consumers (Outbound tells how stalled each is; ShedSlow closes one)
// until enough is freed. The frame that crossed the limit is still accepted: the send that
// happens to cross it does not decide who pays.
//
// A session closed as a slow consumer drops its queue at once, but a write already in flight
// holds its bytes until it returns (the client reads them, or the grace of
// Limits.SlowCloseGrace aborts the session). Those bytes are counted as releasing and not
// charged to later sends, so one stalled write is never shed twice.
type Budget struct {
	limit int64
	// used counts every byte accepted and not yet written or dropped.
	used atomic.Int64
	// releasing is the part of used held by writes of sessions already closed as slow
	// consumers: freed within their grace whatever the client does.
	releasing atomic.Int64

	shedMu sync.Mutex
	shed   func(need int64)
}

// NewBudget makes a budget of limit bytes. shed is called, one call at a time, when a send
// takes the total over the limit, with the number of bytes to free; it sheds sessions with
// ShedSlow.
func NewBudget(limit int64, shed func(need int64)) *Budget {
	return &Budget{limit: limit, shed: shed}
}

// Limit is the budget in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Used is the number of bytes accepted and not yet written or dropped.
func (b *Budget) Used() int64 { return b.used.Load() }

// shedHeadroom: shedding frees this fraction of the limit beyond the excess, so that a
// budget held at its limit does not scan the sessions on every send.
const shedHeadroom = 8 // 1/8 of the limit

func (b *Budget) charge(n int) {
	if b.used.Add(int64(n))-b.releasing.Load() <= b.limit {
		return
	}
	b.shedMu.Lock()
	defer b.shedMu.Unlock()
	// Re-check: another sender may have shed while this one waited for the mutex.
	if over := b.used.Load() - b.releasing.Load() - b.limit; over > 0 && b.shed != nil {
		b.shed(over + b.limit/shedHeadroom)
	}
}

// release returns n bytes; a nil Budget (no budget configured) ignores it.
func (b *Budget) release(n int) {
	if b != nil && n != 0 {
		b.used.Add(-int64(n))
	}
}
