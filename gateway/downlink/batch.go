package downlink

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/gateway/session"
)

// Bounds of a delivery batch: the records one partition's deliverer queues on their target
// sessions (session.Queue) before it writes to them (session.Wake). A batch ends once no
// fetched record of its partition is waiting and Kafka held none after its last record when
// that record was fetched (the fetch's high watermark), so a lone record is written to each
// session at once (session.Deliver) and never waits for records that have not arrived; a
// record in a batch waits at most for the queueing of the others (bounded here), never for a
// timer.
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
	// batchBehindMaxWait bounds the wait for records Kafka held after a batch's last record
	// (kafka-go's reader fetches them at once, so they normally come within a fetch's round
	// trip): a fetch that fails, or offsets the log no longer has, end the batch after it.
	batchBehindMaxWait = 50 * time.Millisecond
)

// batch is what one partition's deliverer has queued and not written yet: the
// sessions it owes a Wake, each listed once (session.Queue returns true once per wake owed).
// Owned by the partition's deliverer goroutine.
type batch struct {
	owed       []*session.Session
	records    int
	deliveries int
	bytes      int
	// lone: the record being handled is the batch's only one (none was queued before it on the
	// pod, none waits behind it, Kafka held none after it) and wants no receipt, so each target
	// session is written to at once (session.Deliver, not queued: the batch owes it no wake),
	// in one pass over the targets: there is nothing to merge.
	lone bool
	// joined: the batch queued or delivered something and is in the pod's wake pass
	// (pass.join), which waits for it; behind: Kafka held records after the last one handled
	// when it was fetched. A batch that delivered nothing (records skipped, the window
	// refilled) holds no one back.
	joined, behind bool
	// written counts the socket writes the wakes made on this goroutine, reported to the
	// metrics once per batch.
	written session.Tally
	// pass is shared by the consumer's deliverers (nil: this batch wakes its own sessions).
	pass *wakePass
	// sizes observes the records of each batch ended with any (nil: not observed).
	sizes prometheus.Observer
}

// queued records that frame was queued on a session; owed is session.Queue's result.
func (b *batch) queued(s *session.Session, owed bool, frame int) {
	b.count(frame)
	if owed {
		b.owed = append(b.owed, s)
	}
}

// count adds a delivery of frame bytes to the batch's bounds; the batch's first joins the
// pod's wake pass (a lone record's too: the batches other partitions end meanwhile wait for
// it and are written in one pass when it ends).
func (b *batch) count(frame int) {
	if !b.joined && b.pass != nil {
		b.pass.join()
		b.joined = true
	}
	b.deliveries++
	b.bytes += frame
}

// full reports whether the batch reached one of its bounds.
func (b *batch) full() bool {
	return b.records >= batchMaxRecords || b.deliveries >= batchMaxDeliveries || b.bytes >= batchMaxBytes
}

// end ends the batch: its owed sessions go to the pod's wake pass, and if this deliverer is
// the last in a batch and no pass is being written, it writes to every session the pass
// holds, then to those owed meanwhile, until a pass finds none, or deliverers still in a batch
// that will write it (wakePass.done) (session.Wake: on this goroutine, without blocking; a session whose socket is full gets a
// flush goroutine for the rest). The lists keep their capacity but not the sessions.
func (b *batch) end() {
	if b.sizes != nil && b.records > 0 {
		b.sizes.Observe(float64(b.records))
	}
	if b.pass != nil && b.joined {
		passes := 0
		for wake := b.pass.leave(b); wake != nil; wake = b.pass.done(wake, passes) {
			for _, s := range wake {
				s.Wake(&b.written)
			}
			passes++
		}
	} else {
		for _, s := range b.owed {
			s.Wake(&b.written)
		}
	}
	b.written.Report()
	clear(b.owed)
	b.owed = b.owed[:0]
	b.records, b.deliveries, b.bytes = 0, 0, 0
	b.joined, b.behind = false, false
}

// deliverBatches handles one partition's records in the order they come from fetched, until
// it is closed: handle queues each on its targets and adds it to the batch, and the batch
// ends when nothing more is waiting in fetched (the next receive may block) and Kafka held
// nothing after the last record, or at its bounds. Only this goroutine receives from
// fetched, so a record seen waiting is still there. pass (nil: none) is the pod's wake pass.
func deliverBatches(fetched <-chan kafka.Message, pass *wakePass, sizes prometheus.Observer, handle func(kafka.Message, *batch)) {
	b := batch{pass: pass, sizes: sizes}
	behind := time.NewTimer(batchBehindMaxWait)
	behind.Stop()
	for {
		var m kafka.Message
		ok := true
		if b.records > 0 && b.behind {
			behind.Reset(batchBehindMaxWait)
			select {
			case m, ok = <-fetched:
				behind.Stop()
			case <-behind.C:
				b.end()
				continue
			}
		} else {
			m, ok = <-fetched
		}
		if !ok {
			break
		}
		b.lone = b.records == 0 && len(fetched) == 0 && !kafkaHoldsMore(m) && (pass == nil || pass.idle())
		handle(m, &b)
		b.behind = kafkaHoldsMore(m)
		if (len(fetched) == 0 && !b.behind) || b.full() {
			b.end()
		}
	}
	b.end()
}

// kafkaHoldsMore reports whether the partition had records after m when m was fetched (its
// fetch's high watermark is past it): the rest of that fetch, or of the next one.
func kafkaHoldsMore(m kafka.Message) bool {
	return m.Offset+1 < m.HighWaterMark
}
