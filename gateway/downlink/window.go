package downlink

import (
	"slices"
	"sort"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// window keeps the recent records of every partition, so that a session resuming on this pod
// (after a drain or a crash of another) gets what it missed. Every pod reads every record, so
// every pod can replay for any session. Bounded by a record count per partition and an age.
// Guarded by Consumer.mu: appending a record and resolving its targets happen under the same
// lock as a resume's snapshot and registration, which is what makes replay + live delivery
// gapless and duplicate-free.
type window struct {
	maxAge time.Duration
	parts  map[int]*ring
	// marks is the last list watermarksLocked made, returned again while it still holds:
	// every handshake's ack carries the watermarks, and on a pod whose partitions are quiet
	// a list per handshake is garbage that idle connections' RSS carries until the next GC
	// (docs/benchmarks.md, issue 17). Never modified once returned: callers only encode it.
	marks []*pb.Position
}

type record struct {
	partition int
	offset    int64
	at        time.Time
	d         *pb.Downlink
}

// ring is one partition's records in offset order, oldest first, at most len(buf).
type ring struct {
	buf        []record
	head, size int
	// next is the offset after the last record handled (window or not), the partition's
	// watermark; deliverFrom is where live delivery starts (earlier records only fill the
	// window after a restart); end is the partition's end offset (high watermark) as last
	// learnt from Kafka, which may be ahead of next.
	next, deliverFrom, end int64
}

// learnEnd records the partition's end offset as Kafka reported it.
func (r *ring) learnEnd(end int64) { r.end = max(r.end, end) }

func newRing(capacity int, next, deliverFrom int64) *ring {
	return &ring{buf: make([]record, max(capacity, 1)), next: next, deliverFrom: deliverFrom}
}

func (r *ring) push(rec record) {
	i := (r.head + r.size) % len(r.buf)
	if r.size == len(r.buf) {
		r.buf[r.head] = record{}
		r.head = (r.head + 1) % len(r.buf)
		r.size--
	}
	r.buf[i] = rec
	r.size++
}

func (r *ring) at(i int) *record { return &r.buf[(r.head+i)%len(r.buf)] }

// expire drops records older than maxAge.
func (r *ring) expire(cutoff time.Time) {
	for r.size > 0 && r.at(0).at.Before(cutoff) {
		r.buf[r.head] = record{}
		r.head = (r.head + 1) % len(r.buf)
		r.size--
	}
}

// first is the oldest offset still held (next when empty).
func (r *ring) first() int64 {
	if r.size == 0 {
		return r.next
	}
	return r.at(0).offset
}

// watermarksLocked is the position of the last handled record per partition, in partition
// order. The list is shared: it must not be modified.
func (w *window) watermarksLocked() []*pb.Position {
	if w.marksHoldLocked() {
		return w.marks
	}
	out := make([]*pb.Position, 0, len(w.parts))
	for p, r := range w.parts {
		out = append(out, &pb.Position{Partition: int32(p), Offset: r.next - 1})
	}
	slices.SortFunc(out, func(a, b *pb.Position) int { return int(a.Partition - b.Partition) })
	w.marks = out
	return out
}

// marksHoldLocked reports whether w.marks has exactly the current partitions and watermarks.
func (w *window) marksHoldLocked() bool {
	if w.marks == nil || len(w.marks) != len(w.parts) {
		return false
	}
	for _, m := range w.marks {
		if r, ok := w.parts[int(m.Partition)]; !ok || r.next-1 != m.Offset {
			return false
		}
	}
	return true
}

// replayLocked returns, in partition then offset order, the unexpired records after the
// client's positions that target s, and the partitions where records it may have needed are
// no longer held.
//
// Positions it cannot use are listed in result.rejected and replay nothing of their partition:
// a partition the window does not have, an offset below -1, an offset at or beyond the
// partition's end (no such record was written, as far as this pod knows: Attach asks Kafka
// first when a position is beyond what this pod has read), a partition named twice. They change nothing else: the status says only whether records were lost.
func (w *window) replayLocked(s *session.Session, positions []*pb.Position, now time.Time) ([]*record, *pb.ResumeResult) {
	result := &pb.ResumeResult{Status: pb.ResumeResult_STATUS_COMPLETE}
	from := map[int]int64{}
	refused := map[int]bool{}
	for _, p := range positions {
		part := int(p.Partition)
		r, ok := w.parts[part]
		_, twice := from[part]
		if !ok || twice || refused[part] || p.Offset < -1 || p.Offset >= max(r.next, r.end) {
			result.Rejected = append(result.Rejected, &pb.Position{Partition: p.Partition, Offset: p.Offset})
			refused[part] = true
			continue
		}
		from[part] = p.Offset
	}
	var out []*record
	parts := make([]int, 0, len(w.parts))
	for p := range w.parts {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		r := w.parts[p]
		if refused[p] {
			continue
		}
		last, known := from[p]
		if !known {
			last = -1 // a partition the client never heard of: everything in it is new to it
		}
		r.expire(now.Add(-w.maxAge))
		if last+1 < r.first() && last+1 < r.next {
			result.Status = pb.ResumeResult_STATUS_NOT_RECOVERED
			result.NotRecovered = append(result.NotRecovered, &pb.Position{Partition: int32(p), Offset: r.first()})
		}
		// Offsets are sorted: start at the first record after the client's position, so a
		// resume costs the size of its gap, not of the window.
		start := sort.Search(r.size, func(i int) bool { return r.at(i).offset > last })
		for i := start; i < r.size; i++ {
			rec := r.at(i)
			if targetsSession(rec.d.Target, s) &&
				(rec.d.ExpiresAtMs == 0 || now.UnixMilli() < rec.d.ExpiresAtMs) {
				out = append(out, rec)
			}
		}
	}
	return out, result
}

// targetsSession reports whether a target selects s.
func targetsSession(t *pb.Target, s *session.Session) bool {
	switch k := t.GetKind().(type) {
	case *pb.Target_UserId:
		return k.UserId == s.UserID
	case *pb.Target_Session:
		return k.Session.GetUserId() == s.UserID && k.Session.GetSessionId() == s.SessionID
	case *pb.Target_Group:
		return slices.Contains(s.Groups, k.Group)
	case *pb.Target_All:
		return k.All
	}
	return false
}

// findLocked is the record at pos if the window still holds it and it is message messageID
// (a client's PUSH_ACK names both), else nil. The record is valid until the lock is released.
func (w *window) findLocked(pos *pb.Position, messageID string) *record {
	r, ok := w.parts[int(pos.GetPartition())]
	if !ok {
		return nil
	}
	i := sort.Search(r.size, func(i int) bool { return r.at(i).offset >= pos.GetOffset() })
	if i == r.size || r.at(i).offset != pos.GetOffset() || r.at(i).d.GetMessageId() != messageID {
		return nil
	}
	return r.at(i)
}
