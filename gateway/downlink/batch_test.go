package downlink

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// recordingTransport keeps every write (one slice of frames per write).
type recordingTransport struct {
	mu     sync.Mutex
	writes [][]string
}

func (r *recordingTransport) Write(bufs [][]byte) error {
	w := make([]string, len(bufs))
	for i, b := range bufs {
		w[i] = string(b)
	}
	r.mu.Lock()
	r.writes = append(r.writes, w)
	r.mu.Unlock()
	return nil
}

func (r *recordingTransport) Close() error { return nil }

func (r *recordingTransport) get() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.writes...)
}

// batchSessions are sessions on recording transports whose flushes are counted; queueOn
// returns a handle function that queues each record's value on every one of them, as
// Consumer.handle queues a broadcast.
type batchSessions struct {
	mu       sync.Mutex
	flushes  int
	sessions []*session.Session
	wire     []*recordingTransport
}

func newBatchSessions(n int) *batchSessions {
	bs := &batchSessions{}
	hooks := &session.Hooks{Go: func(f func()) {
		bs.mu.Lock()
		bs.flushes++
		bs.mu.Unlock()
		go f()
	}}
	limits := &session.Limits{QueueFrames: 1024, QueueBytes: 1 << 20}
	for range n {
		tr := &recordingTransport{}
		bs.wire = append(bs.wire, tr)
		bs.sessions = append(bs.sessions, session.New(tr, "", limits, hooks, time.Now()))
	}
	return bs
}

func (bs *batchSessions) handle(m kafka.Message, b *batch) {
	b.records++
	for _, s := range bs.sessions {
		wake, err := s.Queue(m.Value)
		if err != nil {
			panic(err)
		}
		b.queued(s, wake, len(m.Value))
	}
}

func (bs *batchSessions) flushCount() int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.flushes
}

func fetchedRecord(i int) kafka.Message {
	return kafka.Message{Offset: int64(i), Value: fmt.Appendf(nil, "r%03d", i)}
}

func TestBatchWakesEachSessionOnceWithEveryRecordQueued(t *testing.T) {
	bs := newBatchSessions(3)
	fetched := make(chan kafka.Message, batchMaxRecords)
	for i := range 5 { // fetched together
		fetched <- fetchedRecord(i)
	}
	close(fetched)
	deliverBatches(fetched, nil, nil, bs.handle)
	wait.For(t, 5*time.Second, "every session's write", func() bool {
		for _, w := range bs.wire {
			if len(w.get()) == 0 {
				return false
			}
		}
		return true
	})
	if n := bs.flushCount(); n != 3 {
		t.Fatalf("%d flushes started for 3 sessions; want one each", n)
	}
	for i, w := range bs.wire {
		if got := w.get(); fmt.Sprint(got) != "[[r000 r001 r002 r003 r004]]" {
			t.Fatalf("session %d wrote %v; want the 5 records in order in one write", i, got)
		}
	}
}

func TestLoneRecordIsFlushedWithoutWaitingForMore(t *testing.T) {
	bs := newBatchSessions(2)
	fetched := make(chan kafka.Message, batchMaxRecords)
	done := make(chan struct{})
	go func() {
		deliverBatches(fetched, nil, nil, bs.handle)
		close(done)
	}()
	defer func() { close(fetched); <-done }()
	fetched <- fetchedRecord(0)
	// Nothing more arrives: the record must be written anyway.
	wait.For(t, 5*time.Second, "the lone record's write", func() bool {
		return len(bs.wire[0].get()) == 1 && len(bs.wire[1].get()) == 1
	})
	fetched <- fetchedRecord(1)
	wait.For(t, 5*time.Second, "the next lone record's write", func() bool {
		return len(bs.wire[0].get()) == 2 && len(bs.wire[1].get()) == 2
	})
	for i, w := range bs.wire {
		if got := w.get(); fmt.Sprint(got) != "[[r000] [r001]]" {
			t.Fatalf("session %d wrote %v", i, got)
		}
	}
}

func TestBatchEndsAtItsRecordBound(t *testing.T) {
	bs := newBatchSessions(1)
	n := batchMaxRecords + 10
	fetched := make(chan kafka.Message, n)
	for i := range n {
		fetched <- fetchedRecord(i)
	}
	close(fetched)
	deliverBatches(fetched, nil, nil, bs.handle)
	// The first batch is woken at its bound, with the rest still waiting; its flush may take
	// frames queued after the wake, so what is known is: every record, in order, and a flush
	// started per batch.
	wait.For(t, 5*time.Second, "every record written", func() bool {
		total := 0
		for _, w := range bs.wire[0].get() {
			total += len(w)
		}
		return total == n
	})
	var all []string
	for _, w := range bs.wire[0].get() {
		all = append(all, w...)
	}
	for i, v := range all {
		if v != string(fetchedRecord(i).Value) {
			t.Fatalf("write order %v", all)
		}
	}
	if f := bs.flushCount(); f < 1 || f > 2 {
		t.Fatalf("%d flushes started for two batches on one session; want 1 or 2", f)
	}
	if first := bs.wire[0].get()[0]; len(first) < batchMaxRecords {
		t.Fatalf("the first write carried %d frames; want at least the %d of the first batch", len(first), batchMaxRecords)
	}
}

// eventLog is one ordered log shared by a test's handle function and its transports.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// nowTransport writes at once (session.WriterNow, as the netpoll socket), logging each write.
type nowTransport struct {
	name string
	log  *eventLog
}

func (n *nowTransport) WriteNow(bufs [][]byte) (int, error) {
	total := 0
	var frames []string
	for _, b := range bufs {
		total += len(b)
		frames = append(frames, string(b))
	}
	n.log.add(fmt.Sprintf("write %s %v", n.name, frames))
	return total, nil
}

func (n *nowTransport) Write(bufs [][]byte) error {
	_, err := n.WriteNow(bufs)
	return err
}

func (n *nowTransport) Close() error { return nil }

func TestLoneRecordIsWrittenToEachSessionAsItIsQueuedAndABatchOnceQueued(t *testing.T) {
	log := &eventLog{}
	limits := &session.Limits{QueueFrames: 1024, QueueBytes: 1 << 20}
	var sessions []*session.Session
	for _, name := range []string{"s0", "s1"} {
		sessions = append(sessions, session.New(&nowTransport{name: name, log: log}, "", limits, &session.Hooks{}, time.Now()))
	}
	handle := func(m kafka.Message, b *batch) {
		b.records++
		for i, s := range sessions {
			if b.lone { // as handle does: written at once
				log.add(fmt.Sprintf("deliver s%d %s", i, m.Value))
				if err := s.Deliver(m.Value, &b.written); err != nil {
					t.Fatal(err)
				}
				b.count(len(m.Value))
				continue
			}
			log.add(fmt.Sprintf("queue s%d %s", i, m.Value))
			wake, err := s.Queue(m.Value)
			if err != nil {
				t.Fatal(err)
			}
			b.queued(s, wake, len(m.Value))
		}
	}
	run := func(records ...int) []string {
		log.mu.Lock()
		log.events = nil
		log.mu.Unlock()
		fetched := make(chan kafka.Message, len(records))
		for _, r := range records {
			fetched <- fetchedRecord(r)
		}
		close(fetched)
		deliverBatches(fetched, nil, nil, handle)
		log.mu.Lock()
		defer log.mu.Unlock()
		return append([]string(nil), log.events...)
	}
	// A lone record: one pass, each session written as the record is delivered to it.
	if got, want := fmt.Sprint(run(0)), "[deliver s0 r000 write s0 [r000] deliver s1 r000 write s1 [r000]]"; got != want {
		t.Fatalf("lone record: %s\nwant %s", got, want)
	}
	// Records fetched together: every record queued on every session before any write.
	if got, want := fmt.Sprint(run(1, 2)), "[queue s0 r001 queue s1 r001 queue s0 r002 queue s1 r002 write s0 [r001 r002] write s1 [r001 r002]]"; got != want {
		t.Fatalf("two records fetched together: %s\nwant %s", got, want)
	}
}
