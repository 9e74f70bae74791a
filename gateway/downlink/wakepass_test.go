package downlink

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// passSessions are sessions on transports that write at once (as the netpoll socket), their
// writes in one log; handle queues a record on every one, as a broadcast.
type passSessions struct {
	log      *eventLog
	sessions []*session.Session
}

func newPassSessions(names ...string) *passSessions {
	ps := &passSessions{log: &eventLog{}}
	limits := &session.Limits{QueueFrames: 1024, QueueBytes: 1 << 20}
	for _, name := range names {
		ps.sessions = append(ps.sessions, session.New(&nowTransport{name: name, log: ps.log}, "", limits, &session.Hooks{}, time.Now()))
	}
	return ps
}

func (ps *passSessions) handle(m kafka.Message, b *batch) {
	b.records++
	for _, s := range ps.sessions {
		if b.lone { // as Consumer.handle: written at once
			if err := s.Deliver(m.Value, &b.written); err != nil {
				panic(err)
			}
			b.count(len(m.Value))
			continue
		}
		owed, err := s.Queue(m.Value)
		if err != nil {
			panic(err)
		}
		b.queued(s, owed, len(m.Value))
	}
}

func (ps *passSessions) writes() []string {
	ps.log.mu.Lock()
	defer ps.log.mu.Unlock()
	return append([]string(nil), ps.log.events...)
}

// deliverer runs deliverBatches over a channel of its own until the test ends.
func deliverer(t *testing.T, pass *wakePass, handle func(kafka.Message, *batch)) chan<- kafka.Message {
	fetched := make(chan kafka.Message, batchMaxRecords)
	done := make(chan struct{})
	go func() {
		defer close(done)
		deliverBatches(fetched, pass, nil, handle)
	}()
	t.Cleanup(func() { close(fetched); <-done })
	return fetched
}

// inBatch is a handle function that queues the record on its own session, then stays in its
// batch until release is closed: another partition's deliverer in a batch.
func inBatch(own *passSessions, in, release chan struct{}) func(kafka.Message, *batch) {
	return func(m kafka.Message, b *batch) {
		own.handle(m, b)
		close(in)
		<-release
	}
}

func (w *wakePass) state() (busy, owed, records int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.busy, len(w.owed), w.records
}

// A burst spread over two partitions: the batches partition A ends while partition B is in
// one are written in one pass with B's, one write per session, by whichever deliverer ends
// last. Written per partition batch, each session got one write per batch.
func TestPartitionsBatchesEndingTogetherAreWrittenInOnePass(t *testing.T) {
	ps := newPassSessions("s0", "s1")
	other := &passSessions{log: ps.log, sessions: []*session.Session{session.New(&nowTransport{name: "sb", log: ps.log}, "",
		&session.Limits{QueueFrames: 1024, QueueBytes: 1 << 20}, &session.Hooks{}, time.Now())}}
	var pass wakePass
	inB, releaseB := make(chan struct{}), make(chan struct{})
	b := deliverer(t, &pass, inBatch(other, inB, releaseB))
	var once sync.Once
	release := func() { once.Do(func() { close(releaseB) }) }
	t.Cleanup(release) // before B's deliverer is stopped, if the test ends early
	a := deliverer(t, &pass, ps.handle)

	b <- kafka.Message{Offset: 0, HighWaterMark: 1, Value: []byte("b0")}
	<-inB
	a <- kafka.Message{Offset: 0, HighWaterMark: 1, Value: []byte("a0")}
	wait.For(t, 5*time.Second, "A's first batch handed to the pass", func() bool {
		busy, owed, records := pass.state()
		return busy == 1 && owed == 2 && records == 1
	})
	a <- kafka.Message{Offset: 1, HighWaterMark: 2, Value: []byte("a1")}
	wait.For(t, 5*time.Second, "A's second batch handed to the pass", func() bool {
		busy, owed, records := pass.state()
		return busy == 1 && owed == 2 && records == 2
	})
	// B's record was alone on the pod when it came: written to sb at once, B still in its batch.
	if got, want := fmt.Sprint(ps.writes()), "[write sb [b0]]"; got != want {
		t.Fatalf("writes while partition B was in a batch: %s; want %s", got, want)
	}
	release()
	wait.For(t, 5*time.Second, "the three sessions written", func() bool { return len(ps.writes()) == 3 })
	if got, want := fmt.Sprint(ps.writes()), "[write sb [b0] write s0 [a0 a1] write s1 [a0 a1]]"; got != want {
		t.Fatalf("writes %s; want %s", got, want)
	}
}

// A record whose fetch's high watermark is past it is not written alone: Kafka holds the
// records after it, which come with the rest of the fetch or the next one, and the batch
// waits for them. Before, a record seen with nothing waiting behind it in the channel was a
// batch of its own (written to every session alone) however many Kafka held.
func TestBatchWaitsForTheRecordsKafkaHeldAfterItsLast(t *testing.T) {
	ps := newPassSessions("s0", "s1")
	handled := make(chan int64, 3)
	fetched := deliverer(t, &wakePass{}, func(m kafka.Message, b *batch) {
		ps.handle(m, b)
		handled <- m.Offset
	})
	fetched <- kafka.Message{Offset: 0, HighWaterMark: 3, Value: []byte("r0")}
	<-handled
	fetched <- kafka.Message{Offset: 1, HighWaterMark: 3, Value: []byte("r1")}
	<-handled
	if w := ps.writes(); len(w) != 0 {
		t.Fatalf("written before the records Kafka held after them arrived: %v", w)
	}
	fetched <- kafka.Message{Offset: 2, HighWaterMark: 3, Value: []byte("r2")}
	wait.For(t, 5*time.Second, "both sessions written", func() bool { return len(ps.writes()) == 2 })
	if got, want := fmt.Sprint(ps.writes()), "[write s0 [r0 r1 r2] write s1 [r0 r1 r2]]"; got != want {
		t.Fatalf("writes %s; want %s", got, want)
	}
}

// The wait for records Kafka held is bounded: when they do not come (a failed fetch, offsets
// the log no longer has), the batch is written after batchBehindMaxWait.
func TestBatchWaitForRecordsKafkaHeldIsBounded(t *testing.T) {
	ps := newPassSessions("s0")
	fetched := deliverer(t, &wakePass{}, ps.handle)
	start := time.Now()
	fetched <- kafka.Message{Offset: 0, HighWaterMark: 5, Value: []byte("r0")}
	wait.For(t, 5*time.Second, "the record written", func() bool { return len(ps.writes()) == 1 })
	if waited := time.Since(start); waited < batchBehindMaxWait {
		t.Fatalf("written after %s, before the records Kafka held could come (%s)", waited, batchBehindMaxWait)
	}
}

// A deliverer in a batch holds the others' sessions back at most until what they owe reaches
// the pass's bounds: then the deliverer ending a batch writes at once.
func TestWakePassWritesAtTheBatchBoundsWhateverTheOthersDo(t *testing.T) {
	ps := newPassSessions("s0")
	var pass wakePass
	inB, releaseB := make(chan struct{}), make(chan struct{})
	b := deliverer(t, &pass, inBatch(newPassSessions("sb"), inB, releaseB))
	t.Cleanup(func() { close(releaseB) }) // before B's deliverer is stopped
	a := deliverer(t, &pass, ps.handle)
	b <- kafka.Message{Offset: 0, HighWaterMark: 1, Value: []byte("b0")}
	<-inB
	for i := range passMaxRecords - 1 {
		a <- kafka.Message{Offset: int64(i), HighWaterMark: int64(i + 1), Value: fmt.Appendf(nil, "a%d", i)}
	}
	wait.For(t, 5*time.Second, "A's records handed to the pass", func() bool {
		_, _, records := pass.state()
		return records == passMaxRecords-1
	})
	if w := ps.writes(); len(w) != 0 {
		t.Fatalf("written below the bounds while B was in a batch: %v", w)
	}
	a <- kafka.Message{Offset: passMaxRecords - 1, HighWaterMark: passMaxRecords, Value: []byte("last")}
	wait.For(t, 5*time.Second, "the session written", func() bool { return len(ps.writes()) == 1 })
	if w := ps.writes()[0]; strings.Count(w, " ") != passMaxRecords+1 || !strings.HasSuffix(w, "last]") {
		t.Fatalf("write %q; want the %d records", w, passMaxRecords)
	}
}

// blockingNow writes at once like nowTransport, except that its first write waits for release.
type blockingNow struct {
	nowTransport
	once             sync.Once
	writing, release chan struct{}
}

func (b *blockingNow) WriteNow(bufs [][]byte) (int, error) {
	b.once.Do(func() {
		close(b.writing)
		<-b.release
	})
	return b.nowTransport.WriteNow(bufs)
}

// One pass at a time: a batch that ends while a pass is being written is written by the
// writing deliverer's next pass, not by a second writer at the same time.
func TestBatchEndingDuringAPassIsWrittenByTheNextPass(t *testing.T) {
	log := &eventLog{}
	limits := &session.Limits{QueueFrames: 1024, QueueBytes: 1 << 20}
	slow := &blockingNow{nowTransport: nowTransport{name: "s1", log: log}, writing: make(chan struct{}), release: make(chan struct{})}
	ps := &passSessions{log: log, sessions: []*session.Session{
		session.New(&nowTransport{name: "s0", log: log}, "", limits, &session.Hooks{}, time.Now()),
		session.New(slow, "", limits, &session.Hooks{}, time.Now()),
	}}
	var pass wakePass
	a := deliverer(t, &pass, ps.handle)
	b := deliverer(t, &pass, ps.handle)
	var once sync.Once
	release := func() { once.Do(func() { close(slow.release) }) }
	t.Cleanup(release) // before the deliverers are stopped, if the test ends early
	a <- kafka.Message{Offset: 0, HighWaterMark: 2, Value: []byte("a0")}
	a <- kafka.Message{Offset: 1, HighWaterMark: 2, Value: []byte("a1")}
	<-slow.writing // A writes its pass: s0, then s1, whose write blocks
	b <- kafka.Message{Offset: 0, HighWaterMark: 1, Value: []byte("b0")}
	wait.For(t, 5*time.Second, "B's batch handed to the pass", func() bool {
		busy, owed, records := pass.state()
		return busy == 0 && owed == 1 && records == 1
	})
	if got, want := fmt.Sprint(ps.writes()), "[write s0 [a0 a1]]"; got != want {
		t.Fatalf("writes while A's pass was being written: %s; want %s (B's batch waits for the next pass)", got, want)
	}
	release()
	// s1 takes b0 in the flush that follows its write (queued during it); s0 gets it from
	// A's next pass.
	wait.For(t, 5*time.Second, "the four writes", func() bool { return len(ps.writes()) == 4 })
	w := ps.writes()
	slices.Sort(w)
	if got, want := fmt.Sprint(w), "[write s0 [a0 a1] write s0 [b0] write s1 [a0 a1] write s1 [b0]]"; got != want {
		t.Fatalf("writes %s; want %s", got, want)
	}
}

// A deliverer whose records queue nothing (skipped: no target here; refilling the window)
// holds no one's pass back, however far behind Kafka's high watermark it reads: a record of
// another partition is still alone and written at once.
func TestBatchThatQueuedNothingHoldsNoPassBack(t *testing.T) {
	ps := newPassSessions("s0")
	var pass wakePass
	skipped := make(chan struct{}, 1)
	b := deliverer(t, &pass, func(kafka.Message, *batch) { skipped <- struct{}{} })
	a := deliverer(t, &pass, ps.handle)
	b <- kafka.Message{Offset: 0, HighWaterMark: 1000, Value: []byte("elsewhere")}
	<-skipped
	if busy, _, _ := pass.state(); busy != 0 {
		t.Fatalf("%d deliverers in a batch after a record that queued nothing; want 0", busy)
	}
	a <- kafka.Message{Offset: 0, HighWaterMark: 1, Value: []byte("a0")}
	wait.For(t, 5*time.Second, "the lone record written", func() bool { return len(ps.writes()) == 1 })
}
