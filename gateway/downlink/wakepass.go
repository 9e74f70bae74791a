package downlink

import (
	"sync"

	"github.com/tcpgateway/tcpgateway/gateway/session"
)

// Bounds of a wake pass: what the partitions' batches that ended may owe before the pass
// starts although a deliverer is still in a batch. A partition's batch is cut at
// batchMaxDeliveries (13 broadcast records to 10000 sessions), so a burst spread over the
// partitions ends several batches at about the same time: four of them share a pass.
const (
	passMaxRecords    = 4 * batchMaxRecords
	passMaxDeliveries = 4 * batchMaxDeliveries
	// passMaxBytes is half the smallest default outbound budget: past it session.Queue
	// flushes at once anyway.
	passMaxBytes = 2 * batchMaxBytes
	// passMaxRun bounds the passes one deliverer writes in a row while others are in a batch.
	passMaxRun = 2
)

// wakePass is shared by a Consumer's partition deliverers: the sessions their batches owe a
// wake are written in one pass once no deliverer is in the middle of a batch, by whichever
// deliverer ends the last one, and one pass at a time: what the batches owe while a pass
// writes is written by the next pass, which the writing deliverer starts when its own ends. A
// broadcast burst is spread over the partitions by key and fetched by each at about the same
// time; written per partition batch, a session got one write per batch or fewer, depending on
// how the deliverers happened to interleave; passed on, it gets one write per pass.
//
// Bounded: a batch that ends with the pass's bounds (passMax*) reached by what is owed over
// the pod starts the pass at once, whatever the other deliverers are doing, so deliverers in
// a stream of batches cannot hold the others' sessions back for longer than a few batches.
type wakePass struct {
	mu sync.Mutex
	// busy counts the deliverers between join and leave (in a batch).
	busy int
	// owed: the sessions the batches that ended owe a wake, each listed once (a session is
	// owed by one deliverer at a time: session.Queue), and their sums.
	owed                       []*session.Session
	records, deliveries, bytes int
	// spare is a list the last pass emptied, kept for its capacity.
	spare []*session.Session
	// writing: a deliverer is writing a pass (between leave or done returning a list and
	// done returning nil).
	writing bool
}

// idle reports whether no deliverer is in a batch or writing and nothing is owed: a record
// arriving now is the only one to write.
func (w *wakePass) idle() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.busy == 0 && len(w.owed) == 0 && !w.writing
}

// join marks a deliverer as in a batch: the pass waits for it.
func (w *wakePass) join() {
	w.mu.Lock()
	w.busy++
	w.mu.Unlock()
}

// leave ends b's batch: its owed sessions join the pass. If no pass is being written and no
// other deliverer is in a batch (or what is owed reached the pass's bounds), the caller gets
// every owed session to wake, and must hand the list back with done; otherwise nil: the
// writing deliverer or the last one out wakes them.
func (w *wakePass) leave(b *batch) []*session.Session {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy--
	w.owed = append(w.owed, b.owed...)
	w.records += b.records
	w.deliveries += b.deliveries
	w.bytes += b.bytes
	if w.writing {
		return nil
	}
	return w.takeLocked()
}

// done takes back a list leave or done returned, once its sessions were woken, and returns
// the next pass for the caller to write (what was owed meanwhile), or nil. After passMaxRun
// passes in a row the caller writes another only if no deliverer is in a batch (else the
// last one out does): a deliverer does not write for the others for ever while its own
// partition waits.
func (w *wakePass) done(list []*session.Session, passes int) []*session.Session {
	clear(list)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.spare == nil {
		w.spare = list[:0]
	}
	w.writing = false
	if passes >= passMaxRun && w.busy > 0 {
		return nil
	}
	return w.takeLocked()
}

// takeLocked starts a pass with every owed session when no deliverer is in a batch or the
// pass's bounds are reached; nil when nothing is owed or the deliverers in a batch will
// start it.
func (w *wakePass) takeLocked() []*session.Session {
	if len(w.owed) == 0 || w.busy > 0 && w.records < passMaxRecords && w.deliveries < passMaxDeliveries && w.bytes < passMaxBytes {
		return nil
	}
	list := w.owed
	w.owed, w.spare = w.spare, nil
	w.records, w.deliveries, w.bytes = 0, 0, 0
	w.writing = true
	return list
}
