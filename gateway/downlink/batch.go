package downlink

import (
	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/gateway/session"
)

// Bounds of a delivery batch: the records one partition's deliverer queues on their target
// sessions (session.Queue) before it writes to them (session.Wake). A batch ends as soon as no
// fetched record of its partition is waiting, so a lone record is written right after it is
// queued and never waits for records that have not arrived; a record in a batch waits at most
// for the queueing of the others (bounded here), never for a timer.
const (
	// batchMaxRecords bounds the records of a batch.
	batchMaxRecords = 64
	// batchMaxDeliveries bounds the frames queued in a batch, summed over its records'
	// targets: about 30 ms of queueing on a loaded 2-vCPU machine (~0.2 µs per frame).
	batchMaxDeliveries = 1 << 17
	// batchMaxBytes bounds the bytes queued in a batch (frame size × targets, summed): a
	// quarter of the smallest default outbound budget (64 MiB). A session that would hold more
	// than half its queue bound, or a budget over half used, is flushed at once anyway
	// (session.Queue).
	batchMaxBytes = 16 << 20
)

// batch is what one partition's deliverer has queued and not written yet: the
// sessions it owes a Wake, each listed once (session.Queue returns true once per wake owed).
// Owned by the partition's deliverer goroutine.
type batch struct {
	owed       []*session.Session
	records    int
	deliveries int
	bytes      int
	// lone: the record being handled is the batch's only one (none was queued before it and
	// none waits behind it) and wants no receipt, so each target session is written to as
	// soon as the record is queued on it, in one pass over the targets: there is nothing to
	// merge.
	lone bool
	// written counts the socket writes the wakes made on this goroutine, reported to the
	// metrics once per batch.
	written session.Tally
}

// queued records that frame was queued on a session; owed is session.Queue's result.
func (b *batch) queued(s *session.Session, owed bool, frame int) {
	switch {
	case owed && b.lone:
		s.Wake(&b.written)
	case owed:
		b.owed = append(b.owed, s)
	}
	b.deliveries++
	b.bytes += frame
}

// full reports whether the batch reached one of its bounds.
func (b *batch) full() bool {
	return b.records >= batchMaxRecords || b.deliveries >= batchMaxDeliveries || b.bytes >= batchMaxBytes
}

// wake writes to every session owed a wake (session.Wake: on this goroutine, without
// blocking; a session whose socket is full gets a flush goroutine for the rest) and empties
// the batch. The list keeps its capacity for the next batch (a pointer per session the
// partition reached at once) but not the sessions.
func (b *batch) wake() {
	for _, s := range b.owed {
		s.Wake(&b.written)
	}
	b.written.Report()
	clear(b.owed)
	b.owed = b.owed[:0]
	b.records, b.deliveries, b.bytes = 0, 0, 0
}

// deliverBatches handles one partition's records in the order they come from fetched, until
// it is closed: handle queues each on its targets and adds it to the batch, and the batch is
// woken when nothing more is waiting in fetched (the next receive may block) or at its bounds.
// Only this goroutine receives from fetched, so a record seen waiting is still there.
func deliverBatches(fetched <-chan kafka.Message, handle func(kafka.Message, *batch)) {
	var b batch
	for m := range fetched {
		b.lone = b.records == 0 && len(fetched) == 0
		handle(m, &b)
		if len(fetched) == 0 || b.full() {
			b.wake()
		}
	}
	b.wake()
}
