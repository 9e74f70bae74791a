package downlink

import (
	"container/heap"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Expiry of unanswered deliveries.
//
// A push that asks for an ack or a reply and carries an expiry ends, for its publisher, in an
// ACKED or REPLIED receipt, or in an EXPIRED one when the expiry passes unanswered: the app
// ignored it, or its client went away and never came back. The pod that delivered the push
// cannot be the one that remembers it, since it may be drained or killed before the expiry.
// So nothing is remembered per pod: DELIVERED receipts carry the expiry, answers follow them
// in the same receipts partition (receipts are keyed by message id), and each receipts
// partition is owned by exactly one live pod (expiryTracker, expiry_tracker.go), which reads
// it and writes the EXPIRED receipts. expiryState is what the owner keeps for one partition.
// It is pure (no Kafka, no clock, no goroutine) and owned by the partition's goroutine.

// Why a receipt could not be held (tcpgw_expiry_dropped_total{receipt}).
const (
	droppedDelivered = "delivered" // a DELIVERED not tracked: its push will never get EXPIRED
	droppedAnswer    = "answer"    // an answer read before its DELIVERED, not remembered
)

type ackKey struct{ message, user, session string }

type entryState uint8

const (
	entryOpen     entryState = iota // delivered; waiting for an answer until it expires
	entryExpiring                   // this pod wrote its EXPIRED, not read back from the partition yet
	entryResolved                   // answered or expired: a tombstone until forgotten
)

// expiryEntry is one (message, user, session) the state holds.
type expiryEntry struct {
	key   ackKey
	state entryState
	// offset of the record that made the state hold the entry: commits never pass it, so a
	// new owner of the partition reads that record again and rebuilds the entry.
	offset int64
	// expires is the push's expiry; zero while unknown (an answer read before its DELIVERED).
	expires time.Time
	// due: open, when it expires; expiring, when to write its EXPIRED again (not read back);
	// resolved, when to forget the tombstone.
	due       time.Time
	delivered *pb.Receipt // the DELIVERED (template of the EXPIRED); nil once resolved
	// lastAnswer is the offset of the last answer read (-1: none); dupAfter that of a
	// DELIVERED read after it (-1: none), which a reader starting between the two would take
	// for an open delivery (see forgettable).
	lastAnswer, dupAfter int64
	dueIdx               int // in waiting or tombs
	offIdx               int // in byOffset
}

// entryBudget bounds the entries held by all the partitions a pod owns (a resource bound:
// ExpiryOptions.MaxEntries, counted by tcpgw_expiry_dropped_total when hit).
type entryBudget struct {
	max int64
	n   atomic.Int64
}

func (b *entryBudget) take() bool {
	if b.n.Add(1) > b.max {
		b.n.Add(-1)
		return false
	}
	return true
}

func (b *entryBudget) give(n int) { b.n.Add(-int64(n)) }

// expiryState tracks the deliveries of one receipts partition, from the receipts read in
// offset order:
//
//   - DELIVERED with expires_at_ms opens an entry per (message, user, session), unless one exists
//     (a second DELIVERED, e.g. a replay after a resume, changes nothing).
//   - ACKED, REPLIED or EXPIRED resolves it into a tombstone, kept until the expiry + margin
//     so that a later duplicate DELIVERED does not reopen it. An answer read before its
//     DELIVERED (two pods wrote them) leaves a tombstone as well, until its expiry + margin
//     when the answer carries the expiry (the gateway sets it when it still holds the push),
//     margin after the last answer otherwise.
//   - expire writes EXPIRED for open entries past their expiry; the entry waits for its own
//     EXPIRED to be read back (written again after rewrite if it is not).
//
// The commit offset is that of the oldest entry held, tombstones included: a new owner
// reading from there rebuilds the same entries, answers and tombstones.
type expiryState struct {
	serverID string
	margin   time.Duration // tombstones outlive the expiry by this
	rewrite  time.Duration // an EXPIRED not read back by then is written again
	budget   *entryBudget

	byKey    map[ackKey]*expiryEntry
	waiting  entryHeap // open and expiring entries, by due
	tombs    entryHeap // resolved entries, by due
	byOffset entryHeap // every entry, by offset
	next     int64     // the offset after the last record applied
	logTime  time.Time // the latest record time read
}

func newExpiryState(next int64, serverID string, margin, rewrite time.Duration, budget *entryBudget) *expiryState {
	s := &expiryState{
		serverID: serverID, margin: margin, rewrite: rewrite, budget: budget,
		byKey: map[ackKey]*expiryEntry{}, next: next,
	}
	s.waiting = entryHeap{less: byDue, idx: func(e *expiryEntry) *int { return &e.dueIdx }}
	s.tombs = entryHeap{less: byDue, idx: func(e *expiryEntry) *int { return &e.dueIdx }}
	s.byOffset = entryHeap{
		less: func(a, b *expiryEntry) bool { return a.offset < b.offset },
		idx:  func(e *expiryEntry) *int { return &e.offIdx },
	}
	return s
}

// apply reads the receipt at offset, appended at time at (the record's timestamp); rc is nil
// for a record that is not a receipt. It returns why the receipt could not be held, if so.
func (s *expiryState) apply(rc *pb.Receipt, offset int64, at time.Time) (dropped string) {
	s.next = offset + 1
	if at.After(s.logTime) {
		s.logTime = at
		// No DELIVERED appended after the log's time passed a tombstone's expiry + margin
		// can be for it: forgetting by the log's time, not the clock, keeps a new owner that
		// reads old records from reopening what they resolved.
		s.forget(s.logTime)
	}
	if rc.GetMessageId() == "" || rc.GetSessionId() == "" {
		return ""
	}
	k := ackKey{rc.MessageId, rc.UserId, rc.SessionId}
	e := s.byKey[k]
	switch rc.Kind {
	case pb.Receipt_KIND_DELIVERED:
		if rc.ExpiresAtMs == 0 {
			return "" // never expires: nothing to report
		}
		expires := time.UnixMilli(rc.ExpiresAtMs)
		if e != nil {
			if e.state == entryResolved && offset > e.lastAnswer {
				e.dupAfter = offset
			}
			s.learnExpiry(e, rc)
			return ""
		}
		if !s.budget.take() {
			return droppedDelivered
		}
		s.add(&expiryEntry{
			key: k, state: entryOpen, offset: offset, expires: expires, due: expires, delivered: rc,
			lastAnswer: -1, dupAfter: -1,
		}, &s.waiting)
	case pb.Receipt_KIND_ACKED, pb.Receipt_KIND_REPLIED, pb.Receipt_KIND_EXPIRED:
		if e != nil {
			if e.state != entryResolved {
				s.resolve(e)
			}
			e.lastAnswer, e.dupAfter = offset, -1
			s.learnExpiry(e, rc)
			if e.expires.IsZero() {
				s.keepUntil(e, at.Add(s.margin))
			}
			return ""
		}
		if !s.budget.take() {
			return droppedAnswer
		}
		e = &expiryEntry{key: k, state: entryResolved, offset: offset, due: at.Add(s.margin), lastAnswer: offset, dupAfter: -1}
		if rc.ExpiresAtMs != 0 {
			e.expires = time.UnixMilli(rc.ExpiresAtMs)
			e.due = e.expires.Add(s.margin)
		}
		s.add(e, &s.tombs)
	}
	return ""
}

// learnExpiry completes a tombstone made by an answer without the expiry: it is kept until
// the expiry + margin.
func (s *expiryState) learnExpiry(e *expiryEntry, rc *pb.Receipt) {
	if !e.expires.IsZero() || rc.ExpiresAtMs == 0 {
		return
	}
	e.expires = time.UnixMilli(rc.ExpiresAtMs)
	s.keepUntil(e, e.expires.Add(s.margin))
}

// keepUntil makes tombstone e live at least until t.
func (s *expiryState) keepUntil(e *expiryEntry, t time.Time) {
	if t.After(e.due) {
		e.due = t
		heap.Fix(&s.tombs, e.dueIdx)
	}
}

// expire returns the EXPIRED receipts to write for the open entries whose expiry passed (and
// again for those written more than rewrite ago and not read back), and forgets the
// tombstones that are done. Call it only once the partition was read up to its end: a record
// further on may answer an entry that looks unanswered.
func (s *expiryState) expire(now time.Time) []*pb.Receipt {
	s.forget(now)
	var out []*pb.Receipt
	for s.waiting.Len() > 0 && !s.waiting.items[0].due.After(now) {
		e := s.waiting.items[0]
		d := e.delivered
		out = append(out, &pb.Receipt{
			MessageId:     d.MessageId,
			CorrelationId: d.CorrelationId,
			Kind:          pb.Receipt_KIND_EXPIRED,
			SessionId:     d.SessionId,
			UserId:        d.UserId,
			ServerId:      s.serverID,
			AtMs:          now.UnixMilli(),
			Position:      d.Position,
			ExpiresAtMs:   d.ExpiresAtMs,
		})
		e.state = entryExpiring
		e.due = now.Add(s.rewrite)
		heap.Fix(&s.waiting, 0)
	}
	return out
}

// writeFailed reopens an entry whose EXPIRED could not be written: the next expire writes it
// again.
func (s *expiryState) writeFailed(k ackKey) {
	if e := s.byKey[k]; e != nil && e.state == entryExpiring {
		e.state = entryOpen
		e.due = e.expires
		heap.Fix(&s.waiting, e.dueIdx)
	}
}

// forget drops the tombstones due by t. Dropping one moves the commit offset on to the oldest
// entry left, and a new owner reading from there must not meet a DELIVERED of a dropped key
// without the answer before it: it would open it and later expire an answered push. That can
// happen only to a key with a DELIVERED after its last answer (a replay of an answered push,
// rare): such a tombstone stays until no entry older than that DELIVERED is left, the commit
// offset then being past every record of its key.
func (s *expiryState) forget(t time.Time) {
	var lingering []*expiryEntry
	for s.tombs.Len() > 0 && !s.tombs.items[0].due.After(t) {
		e := heap.Pop(&s.tombs).(*expiryEntry)
		heap.Remove(&s.byOffset, e.offIdx)
		if e.dupAfter >= 0 {
			lingering = append(lingering, e)
			continue
		}
		s.drop(e)
	}
	// Keep those whose late DELIVERED a commit at the oldest entry left would not pass; each
	// one kept may hold the commit further back, so until none changes.
	for changed := true; changed && len(lingering) > 0; {
		changed = false
		rest := s.next
		if s.byOffset.Len() > 0 {
			rest = s.byOffset.items[0].offset
		}
		for i := 0; i < len(lingering); {
			if e := lingering[i]; e.dupAfter >= rest {
				heap.Push(&s.byOffset, e)
				e.due = t.Add(s.margin) // looked at again then
				heap.Push(&s.tombs, e)
				lingering = slices.Delete(lingering, i, i+1)
				changed = true
				continue
			}
			i++
		}
	}
	for _, e := range lingering {
		s.drop(e)
	}
}

func (s *expiryState) drop(e *expiryEntry) {
	delete(s.byKey, e.key)
	s.budget.give(1)
}

func (s *expiryState) add(e *expiryEntry, h *entryHeap) {
	s.byKey[e.key] = e
	heap.Push(h, e)
	heap.Push(&s.byOffset, e)
}

func (s *expiryState) resolve(e *expiryEntry) {
	heap.Remove(&s.waiting, e.dueIdx)
	e.state = entryResolved
	e.delivered = nil
	e.due = e.expires.Add(s.margin)
	heap.Push(&s.tombs, e)
}

// commitOffset is where a new owner must start reading to rebuild this state: the offset of
// the oldest entry held, or the next record when none is.
func (s *expiryState) commitOffset() int64 {
	if s.byOffset.Len() > 0 {
		return s.byOffset.items[0].offset
	}
	return s.next
}

// nextDue is when expire has something to do next (false: nothing held).
func (s *expiryState) nextDue() (time.Time, bool) {
	var t time.Time
	if s.waiting.Len() > 0 {
		t = s.waiting.items[0].due
	}
	if s.tombs.Len() > 0 && (t.IsZero() || s.tombs.items[0].due.Before(t)) {
		t = s.tombs.items[0].due
	}
	return t, !t.IsZero()
}

// open is the number of deliveries waiting for an answer (expiring ones included); held the
// number of entries, tombstones included.
func (s *expiryState) open() int { return s.waiting.Len() }
func (s *expiryState) held() int { return len(s.byKey) }

// release gives the entries' budget back when the partition is revoked.
func (s *expiryState) release() {
	s.budget.give(len(s.byKey))
	s.byKey = map[ackKey]*expiryEntry{}
	s.waiting.items, s.tombs.items, s.byOffset.items = nil, nil, nil
}

func byDue(a, b *expiryEntry) bool { return a.due.Before(b.due) }

// entryHeap is a min-heap of entries; idx locates an entry's position field for this heap.
type entryHeap struct {
	items []*expiryEntry
	less  func(a, b *expiryEntry) bool
	idx   func(e *expiryEntry) *int
}

func (h *entryHeap) Len() int           { return len(h.items) }
func (h *entryHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *entryHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.idx(h.items[i]) = i
	*h.idx(h.items[j]) = j
}
func (h *entryHeap) Push(x any) {
	e := x.(*expiryEntry)
	*h.idx(e) = len(h.items)
	h.items = append(h.items, e)
}
func (h *entryHeap) Pop() any {
	old := h.items
	e := old[len(old)-1]
	old[len(old)-1] = nil
	h.items = old[:len(old)-1]
	return e
}
