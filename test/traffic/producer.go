package traffic

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/push"
)

// Mix of records: one in broadcastEvery is a broadcast, one in groupEvery (offset by half)
// goes to a group, the rest to users, round-robin.
const (
	broadcastEvery = 20
	groupEvery     = 20
	// producerWorkers push concurrently (kafka-go batches their concurrent writes into one
	// produce request per partition); each target always goes through the same worker, which
	// pushes one record at a time, so the order per user (and group) is the order in which
	// the Producer numbered them. 16 workers top out near 430 records/s on the 2-core box
	// while it runs 1000 clients.
	producerWorkers = 64
	pushTimeout     = 10 * time.Second
	// maxProduce bounds a Producer that nobody stops.
	maxProduce = 10 * time.Minute
)

type outRecord struct {
	kind   byte // 'b', 'u', 'g'
	target int
	seq    int
}

func (r outRecord) payload() []byte {
	if r.kind == 'b' {
		return fmt.Appendf(nil, "b:%d", r.seq)
	}
	return fmt.Appendf(nil, "%c:%d:%d", r.kind, r.target, r.seq)
}

func (r outRecord) pushTarget() push.Target {
	switch r.kind {
	case 'u':
		return push.User(UserName(r.target))
	case 'g':
		return push.Group(GroupName(r.target))
	}
	return push.All()
}

// accepted is a record Kafka stored (Push returned nil): one the clients must receive.
type accepted struct {
	seq int
	at  time.Time
}

// Producer pushes records at a fixed rate and remembers which ones Kafka accepted.
type Producer struct {
	pub     *push.Publisher
	rate    float64
	users   int
	workers []chan outRecord
	stop    chan struct{}
	sched   sync.WaitGroup
	wg      sync.WaitGroup

	mu       sync.Mutex
	bcast    []accepted
	own      [][]accepted // per user
	grp      [][]accepted // per group
	failed   int
	firstErr error
	// started: the first record was due; halted: no more were scheduled; stopped: the last
	// scheduled record was pushed.
	started, halted, stopped time.Time
	scheduled                int
}

// ProducerOptions says where and how fast a producer pushes.
type ProducerOptions struct {
	Brokers []string
	Topic   string
	Rate    float64 // records per second
	Users   int     // the fleet's size: user records go round-robin to users 0..Users-1
}

// StartProducer starts pushing; it is halted when the test ends, if not before.
func StartProducer(t testing.TB, o ProducerOptions) *Producer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := push.New(ctx, push.Options{Brokers: o.Brokers, Topic: o.Topic})
	if err != nil {
		t.Fatal(err)
	}
	p := &Producer{pub: pub, rate: o.Rate, users: o.Users, stop: make(chan struct{}),
		own: make([][]accepted, o.Users), grp: make([][]accepted, groupCount), started: time.Now()}
	for range producerWorkers {
		ch := make(chan outRecord, 4096)
		p.workers = append(p.workers, ch)
		p.wg.Go(func() { p.work(ch) })
	}
	p.sched.Go(p.schedule)
	t.Cleanup(func() {
		p.Halt()
		_ = pub.Close()
	})
	return p
}

// schedule numbers records and hands them to the workers at the configured rate, paced by
// the clock (records due since the start), until stopped.
func (p *Producer) schedule() {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var bNext, userCursor int
	uNext := make([]int, p.users)
	gNext := make([]int, groupCount)
	for i := 0; ; {
		select {
		case <-p.stop:
			p.mu.Lock()
			p.scheduled = i
			p.mu.Unlock()
			return
		case <-tick.C:
		}
		if time.Since(p.started) > maxProduce {
			p.mu.Lock()
			p.scheduled = i
			p.mu.Unlock()
			return
		}
		due := int(time.Since(p.started).Seconds() * p.rate)
		for ; i < due; i++ {
			var r outRecord
			var worker int
			switch {
			case i%broadcastEvery == 0:
				r = outRecord{kind: 'b', target: -1, seq: bNext}
				bNext++
				worker = i / broadcastEvery
			case i%groupEvery == groupEvery/2:
				g := (i / groupEvery) % groupCount
				r = outRecord{kind: 'g', target: g, seq: gNext[g]}
				gNext[g]++
				worker = p.users + g
			default:
				u := userCursor % p.users
				userCursor++
				r = outRecord{kind: 'u', target: u, seq: uNext[u]}
				uNext[u]++
				worker = u
			}
			select {
			case p.workers[worker%len(p.workers)] <- r:
			case <-p.stop:
				p.mu.Lock()
				p.scheduled = i
				p.mu.Unlock()
				return
			}
		}
	}
}

func (p *Producer) work(ch chan outRecord) {
	for r := range ch {
		ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
		_, err := p.pub.Push(ctx, push.Message{Target: r.pushTarget(), Payload: r.payload()})
		cancel()
		now := time.Now()
		p.mu.Lock()
		switch {
		case err != nil:
			p.failed++
			if p.firstErr == nil {
				p.firstErr = err
			}
		case r.kind == 'b':
			p.bcast = append(p.bcast, accepted{r.seq, now})
		case r.kind == 'u':
			p.own[r.target] = append(p.own[r.target], accepted{r.seq, now})
		case r.kind == 'g':
			p.grp[r.target] = append(p.grp[r.target], accepted{r.seq, now})
		}
		p.mu.Unlock()
	}
}

// Halt stops scheduling and waits for the records already handed to the workers (each
// push is bounded by pushTimeout). Idempotent.
func (p *Producer) Halt() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	p.sched.Wait()
	p.mu.Lock()
	p.halted = time.Now()
	p.mu.Unlock()
	for _, ch := range p.workers {
		close(ch)
	}
	p.wg.Wait()
	p.mu.Lock()
	p.stopped = time.Now()
	p.mu.Unlock()
}

// ProducerStats summarises a run.
type ProducerStats struct {
	Scheduled, Accepted, Failed int
	Broadcasts                  int
	Rate                        float64       // offered: scheduled per second while scheduling
	Backlog                     time.Duration // from the halt until the last push returned
	FirstErr                    error
}

// Stats summarises the run so far (complete once halted).

func (p *Producer) Stats() ProducerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := ProducerStats{Scheduled: p.scheduled, Failed: p.failed, FirstErr: p.firstErr, Broadcasts: len(p.bcast)}
	s.Accepted = len(p.bcast)
	for _, a := range p.own {
		s.Accepted += len(a)
	}
	for _, a := range p.grp {
		s.Accepted += len(a)
	}
	if d := p.halted.Sub(p.started); d > 0 {
		s.Rate = float64(s.Scheduled) / d.Seconds()
	}
	s.Backlog = p.stopped.Sub(p.halted)
	return s
}

// acceptedFor returns what ac must have received: every accepted broadcast, its user's
// records and its group's records.
func (p *Producer) acceptedFor(ac *App) (bcast, own, grp []accepted) {
	p.mu.Lock()
	defer p.mu.Unlock()
	bcast, own = p.bcast, p.own[ac.Index]
	if ac.group >= 0 {
		grp = p.grp[ac.group]
	}
	return bcast, own, grp
}
