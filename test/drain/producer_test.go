package drain

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/protocol/pb"
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
	// the producer numbered them. 16 workers top out near 430 records/s on the 2-core box
	// while it runs 1000 clients.
	producerWorkers = 64
	pushTimeout     = 10 * time.Second
	// maxProduce bounds a producer that nobody stops.
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
		return push.User(userName(r.target))
	case 'g':
		return push.Group(groupName(r.target))
	}
	return push.All()
}

// accepted is a record Kafka stored (Push returned nil): one the clients must receive.
type accepted struct {
	seq int
	at  time.Time
}

// producer pushes records at a fixed rate and remembers which ones Kafka accepted.
type producer struct {
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

func (c *cluster) startProducer(users int) *producer {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := push.New(ctx, push.Options{Brokers: []string{c.brokers}, Topic: c.topic})
	if err != nil {
		c.t.Fatal(err)
	}
	p := &producer{pub: pub, rate: c.sc.rate, users: users, stop: make(chan struct{}),
		own: make([][]accepted, users), grp: make([][]accepted, groupCount), started: time.Now()}
	for range producerWorkers {
		ch := make(chan outRecord, 4096)
		p.workers = append(p.workers, ch)
		p.wg.Go(func() { p.work(ch) })
	}
	p.sched.Go(p.schedule)
	c.t.Cleanup(func() {
		p.halt()
		_ = pub.Close()
	})
	return p
}

// schedule numbers records and hands them to the workers at the configured rate, paced by
// the clock (records due since the start), until stopped.
func (p *producer) schedule() {
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

func (p *producer) work(ch chan outRecord) {
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

// halt stops scheduling and waits for the records already handed to the workers (each
// push is bounded by pushTimeout). Idempotent.
func (p *producer) halt() {
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

// producerStats summarises a run.
type producerStats struct {
	scheduled, accepted, failed int
	broadcasts                  int
	rate                        float64       // offered: scheduled per second while scheduling
	backlog                     time.Duration // from the halt until the last push returned
	firstErr                    error
}

func (p *producer) stats() producerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := producerStats{scheduled: p.scheduled, failed: p.failed, firstErr: p.firstErr, broadcasts: len(p.bcast)}
	s.accepted = len(p.bcast)
	for _, a := range p.own {
		s.accepted += len(a)
	}
	for _, a := range p.grp {
		s.accepted += len(a)
	}
	if d := p.halted.Sub(p.started); d > 0 {
		s.rate = float64(s.scheduled) / d.Seconds()
	}
	s.backlog = p.stopped.Sub(p.halted)
	return s
}

// acceptedFor returns what ac must have received: every accepted broadcast, its user's
// records and its group's records.
func (p *producer) acceptedFor(ac *appClient) (bcast, own, grp []accepted) {
	p.mu.Lock()
	defer p.mu.Unlock()
	bcast, own = p.bcast, p.own[ac.idx]
	if ac.group >= 0 {
		grp = p.grp[ac.group]
	}
	return bcast, own, grp
}

// talkers send echo requests through the drain: every request must get a response.
type talkers struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	codes  map[pb.ErrorCode]int
	wrong  []string     // responses that do not echo the request
	failed []failedTalk // requests that got no response
}

// failedTalk is a request that got no response.
type failedTalk struct {
	ac         *appClient
	sent, done time.Time
	err        error
}

// maxTalks bounds each talker's loop besides its stop channel.
const maxTalks = 100000

// startTalkers makes each client send an echo request every interval until halted.
func startTalkers(t *testing.T, clients []*appClient, interval time.Duration) *talkers {
	tk := &talkers{stop: make(chan struct{}), codes: map[pb.ErrorCode]int{}}
	for _, ac := range clients {
		tk.wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for n := range maxTalks {
				select {
				case <-tk.stop:
					return
				case <-tick.C:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				payload := fmt.Sprintf("%s #%d", ac.user, n)
				sent := time.Now()
				resp, err := ac.client().Request(ctx, "echo", "ping", []byte(payload))
				cancel()
				tk.record(ac, payload, sent, resp, err)
			}
		})
	}
	t.Cleanup(tk.halt)
	return tk
}

func (tk *talkers) record(ac *appClient, payload string, sent time.Time, resp *pb.Response, err error) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if err != nil {
		tk.failed = append(tk.failed, failedTalk{ac, sent, time.Now(), err})
		return
	}
	tk.codes[resp.GetCode()]++
	if resp.GetCode() == pb.ErrorCode_ERROR_CODE_OK && !strings.Contains(string(resp.GetPayload()), payload) && len(tk.wrong) < 5 {
		tk.wrong = append(tk.wrong, fmt.Sprintf("client %d: response %q does not echo %q", ac.idx, resp.GetPayload(), payload))
	}
}

// halt stops the talkers and waits for their last requests (bounded by their timeout).
func (tk *talkers) halt() {
	select {
	case <-tk.stop:
		return
	default:
	}
	close(tk.stop)
	tk.wg.Wait()
}
