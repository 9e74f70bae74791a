package downlink

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// ExpiryOptions tune the expiry tracker: the consumer group over the receipts topic through
// which each receipts partition is owned by one live pod, which writes the EXPIRED receipts
// of the deliveries in it that went unanswered (see expiry.go). Zero fields get the defaults.
// The gateway configuration's kafka.expiry sets SessionTimeout, HeartbeatInterval,
// RebalanceTimeout and MaxEntries; the others are internal.
//
// The group timings decide how long a partition has no owner when its pod goes away, and so
// how late an EXPIRED can be beyond the push's expiry:
//
//   - a pod that stops (drain, SIGTERM) leaves the group (LeaveGroup): the others notice at
//     their next heartbeat and rejoin, so its partitions move within HeartbeatInterval plus a
//     join round trip (well under a second on a healthy cluster);
//   - a pod that dies without leaving (SIGKILL, node loss) is noticed by the coordinator after
//     SessionTimeout, then its partitions move the same way.
type ExpiryOptions struct {
	// SessionTimeout: the coordinator declares a silent member dead after this. Default 6s,
	// the smallest a broker accepts by default (group.min.session.timeout.ms).
	SessionTimeout time.Duration
	// HeartbeatInterval: how often a member heartbeats, which is also how soon it notices a
	// rebalance. Default 500ms.
	HeartbeatInterval time.Duration
	// RebalanceTimeout: how long the coordinator waits for every member to rejoin during a
	// rebalance. Members stop their partitions within a couple of seconds; default 10s.
	RebalanceTimeout time.Duration
	// JoinGroupBackoff: wait after a failed join (e.g. broker outage). Default 1s (kafka-go's
	// is 5s).
	JoinGroupBackoff time.Duration
	// CommitInterval: owned partitions commit the offset of their oldest held entry this
	// often, and when they are revoked. Default 1s.
	CommitInterval time.Duration
	// MaxEntries bounds the entries (open deliveries and tombstones) held over all owned
	// partitions; beyond it receipts are dropped and counted (tcpgw_expiry_dropped_total).
	// Default Options.ReplayMaxRecords.
	MaxEntries int
	// Margin keeps a tombstone (an answered or expired delivery) this long after its expiry,
	// and an answer read before its DELIVERED this long after it was written: it covers clock
	// skew between pods and receipts that are late in the log. Default 30s.
	Margin time.Duration
	// Rewrite: an EXPIRED this pod wrote and has not read back after this is written again.
	// Default 30s.
	Rewrite time.Duration
}

// Defaults of ExpiryOptions. Those a gateway.yaml can set (kafka.expiry) are gateway/config's,
// so the configuration and the tracker cannot disagree.
const (
	DefaultExpirySessionTimeout    = config.DefaultExpirySessionTimeout
	DefaultExpiryHeartbeatInterval = config.DefaultExpiryHeartbeatInterval
	DefaultExpiryRebalanceTimeout  = config.DefaultExpiryRebalanceTimeout
	DefaultExpiryJoinGroupBackoff  = time.Second
	DefaultExpiryCommitInterval    = time.Second
	DefaultExpiryMargin            = 30 * time.Second
	DefaultExpiryRewrite           = 30 * time.Second
)

// expiryCloseTimeout bounds close: the partitions' last commits and writes, then LeaveGroup.
const expiryCloseTimeout = 10 * time.Second

// expiryFlushTimeout bounds the wait, when a partition is revoked, for the EXPIRED receipts
// written just before to reach Kafka, so that the next owner reads them instead of writing
// them again.
const expiryFlushTimeout = 2 * time.Second

func (o *ExpiryOptions) defaults(maxEntries int) {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.SessionTimeout, DefaultExpirySessionTimeout)
	set(&o.HeartbeatInterval, DefaultExpiryHeartbeatInterval)
	set(&o.RebalanceTimeout, DefaultExpiryRebalanceTimeout)
	set(&o.JoinGroupBackoff, DefaultExpiryJoinGroupBackoff)
	set(&o.CommitInterval, DefaultExpiryCommitInterval)
	set(&o.Margin, DefaultExpiryMargin)
	set(&o.Rewrite, DefaultExpiryRewrite)
	if o.MaxEntries <= 0 {
		o.MaxEntries = maxEntries
	}
}

// ExpiryGroup is the consumer group the pods of one gateway share to own the partitions of
// its receipts topic.
func ExpiryGroup(receiptsTopic string) string { return receiptsTopic + ".expiry" }

// expiryTracker is this pod's membership of the expiry group and the partitions it owns.
// Each owned partition is read by its own goroutine (runPartition), which alone touches its
// expiryState; a generation's commitLoop commits what they publish.
type expiryTracker struct {
	o        ExpiryOptions
	brokers  []string
	topic    string
	serverID string
	writer   *receiptWriter
	client   *kafka.Client
	tr       *kafka.Transport // client's
	dialer   *kafka.Dialer    // the group's and the partition readers'
	m        *metrics.Downlink
	log      *slog.Logger
	now      func() time.Time
	budget   entryBudget

	cg   *kafka.ConsumerGroup // set by start
	stop chan struct{}        // closed by close: ends a backoff wait
	done chan struct{}        // closed when run returned

	missingLog rate.Sometimes // owned by run
}

func newExpiryTracker(o ExpiryOptions, brokers []string, sec kafkasec.Security, topic, serverID string, w *receiptWriter, m *metrics.Downlink, log *slog.Logger, now func() time.Time) *expiryTracker {
	tr := sec.Transport(serverID, requestTimeout)
	t := &expiryTracker{
		o: o, brokers: brokers, topic: topic, serverID: serverID, writer: w, m: m, now: now,
		client: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: requestTimeout, Transport: tr},
		tr:     tr,
		// The client id is the pod name: `kafka-consumer-groups --describe` shows who owns
		// which partition.
		dialer: sec.Dialer(serverID, requestTimeout),
		log:    log.With("component", "expiry", "group", ExpiryGroup(topic)),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),

		missingLog: rate.Sometimes{Interval: topicsMissingLogInterval},
	}
	t.budget.max = int64(o.MaxEntries)
	return t
}

// start joins the group in the background; kafka-go retries (JoinGroupBackoff) while Kafka
// is unreachable.
func (t *expiryTracker) start() error {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                     ExpiryGroup(t.topic),
		Brokers:                t.brokers,
		Topics:                 []string{t.topic},
		Dialer:                 t.dialer,
		HeartbeatInterval:      t.o.HeartbeatInterval,
		SessionTimeout:         t.o.SessionTimeout,
		RebalanceTimeout:       t.o.RebalanceTimeout,
		JoinGroupBackoff:       t.o.JoinGroupBackoff,
		WatchPartitionChanges:  true, // the operator may grow the topic
		PartitionWatchInterval: 5 * time.Second,
		StartOffset:            kafka.FirstOffset,
		Timeout:                requestTimeout,
	})
	if err != nil {
		return err
	}
	t.cg = cg
	go t.run()
	return nil
}

// close revokes the owned partitions (each commits and waits for its last EXPIRED writes) and
// leaves the group, so that the other pods take them over at once. It waits at most
// expiryCloseTimeout: an unresponsive coordinator must not hold the drain up (the pod's
// partitions then move after the session timeout, as for a crash).
func (t *expiryTracker) close() {
	defer t.tr.CloseIdleConnections()
	if t.cg == nil {
		return
	}
	close(t.stop)
	closed := make(chan struct{})
	go func() {
		_ = t.cg.Close()
		<-t.done
		close(closed)
	}()
	timer := time.NewTimer(expiryCloseTimeout)
	defer timer.Stop()
	select {
	case <-closed:
	case <-timer.C:
		t.log.Warn("the expiry group did not close in time; its partitions move after the session timeout", "waited", expiryCloseTimeout.String())
	}
}

// run takes the group's generations one after the other. kafka-go joins the next generation
// only once this loop took the previous one (Next), so waiting here paces the joins.
func (t *expiryTracker) run() {
	defer close(t.done)
	failing := false
	var backoff time.Duration // while the receipts topic is missing
	for {
		gen, err := t.cg.Next(context.Background())
		switch {
		case errors.Is(err, kafka.ErrGroupClosed):
			return
		case err != nil:
			// kafka-go backs off between attempts; log the first failure of a streak only.
			if !failing {
				t.log.Warn("cannot join the expiry group; retrying", "reason", kafkasec.Reason(err), "err", err)
			}
			failing = true
			continue
		}
		t.m.ExpiryRebalances.Inc()
		if failing {
			t.log.Info("joined the expiry group")
		}
		failing = false
		if len(gen.Assignments[t.topic]) == 0 && t.topicMissing() {
			// kafka-go's partition watcher ends a generation at once when the topic is
			// missing, and without a wait here the group would rejoin hundreds of times a
			// second.
			backoff = nextBackoff(backoff, t.o.JoinGroupBackoff, expiryTopicBackoffMax)
			t.missingLog.Do(func() {
				t.log.Warn("receipts topic missing; the expiry group waits for it", "reason", "topics_missing", "topic", t.topic, "retryIn", backoff.String())
			})
			select {
			case <-t.stop:
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		t.startGeneration(gen)
	}
}

// topicMissing reports whether Kafka answers that the receipts topic does not exist.
func (t *expiryTracker) topicMissing() bool {
	missing, err := missingTopics(context.Background(), t.client, t.topic)
	return err == nil && len(missing) > 0
}

// expiryGeneration is one generation of the group as seen by this member: the partitions it
// owns until the generation ends (a member joined or left, or close).
type expiryGeneration struct {
	t   *expiryTracker
	gen *kafka.Generation

	workers sync.WaitGroup // runPartition goroutines

	mu        sync.Mutex // guards offsets, committed
	offsets   map[int]int64
	committed map[int]int64
}

func (t *expiryTracker) startGeneration(gen *kafka.Generation) {
	g := &expiryGeneration{t: t, gen: gen, offsets: map[int]int64{}, committed: map[int]int64{}}
	assigned := gen.Assignments[t.topic]
	parts := make([]int, 0, len(assigned))
	for _, pa := range assigned {
		parts = append(parts, pa.ID)
		g.committed[pa.ID] = pa.Offset
		g.workers.Add(1)
		gen.Start(func(ctx context.Context) {
			defer g.workers.Done()
			t.runPartition(ctx, g, pa.ID, pa.Offset)
		})
	}
	gen.Start(g.commitLoop)
	t.log.Info("expiry generation", "generation", gen.ID, "partitions", parts)
}

// commitLoop commits the partitions' progress every CommitInterval and, once every partition
// goroutine of the generation returned, one last time: a generation's commits are accepted
// until this member rejoins or leaves, which kafka-go does only after this returns.
func (g *expiryGeneration) commitLoop(ctx context.Context) {
	tick := time.NewTicker(g.t.o.CommitInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			g.workers.Wait()
			g.commit()
			return
		case <-tick.C:
			g.commit()
		}
	}
}

func (g *expiryGeneration) setOffset(partition int, offset int64) {
	g.mu.Lock()
	g.offsets[partition] = offset
	g.mu.Unlock()
}

func (g *expiryGeneration) commit() {
	g.mu.Lock()
	changed := map[int]int64{}
	for p, off := range g.offsets {
		if off != g.committed[p] {
			changed[p] = off
		}
	}
	g.mu.Unlock()
	if len(changed) == 0 {
		return
	}
	if err := g.gen.CommitOffsets(map[string]map[int]int64{g.t.topic: changed}); err != nil {
		g.t.log.Warn("expiry commit failed; the next owner re-reads more", "generation", g.gen.ID, "err", err)
		return
	}
	g.mu.Lock()
	for p, off := range changed {
		g.committed[p] = off
	}
	g.mu.Unlock()
}

// runPartition owns one receipts partition until ctx ends (the partition is revoked): it
// reads it from the committed offset, keeps its expiryState, writes EXPIRED receipts once it
// has read up to the end the partition had when it started, and publishes its commit offset.
func (t *expiryTracker) runPartition(ctx context.Context, g *expiryGeneration, partition int, committed int64) {
	t.m.ExpiryPartitions.Inc()
	defer t.m.ExpiryPartitions.Dec()
	first, end, ok := t.bounds(ctx, partition)
	if !ok {
		return // revoked before Kafka answered
	}
	start := min(max(committed, first), end) // none committed, deleted by retention, or a recreated topic
	s := newExpiryState(start, t.serverID, t.o.Margin, t.o.Rewrite, &t.budget)
	caughtUp := start >= end
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        t.brokers,
		Dialer:         t.dialer,
		Topic:          t.topic,
		Partition:      partition,
		MinBytes:       1,
		MaxBytes:       10 << 20,
		MaxWait:        fetchMaxWait,
		ReadBackoffMin: 100 * time.Millisecond,
		ReadBackoffMax: time.Second,
		MaxAttempts:    1 << 30, // keep retrying while the broker is away
	})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		t.log.Error("cannot position the receipts reader", "partition", partition, "offset", start, "err", err)
		<-ctx.Done() // keep the partition (its commit stays where it was) until revoked
		return
	}
	msgs := make(chan kafka.Message, 256)
	fetched := make(chan struct{})
	go func() {
		defer close(fetched)
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, io.EOF) {
					return
				}
				t.log.Warn("receipts fetch failed", "partition", partition, "err", err)
				continue
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.log.Debug("owning receipts partition", "partition", partition, "from", start, "end", end)

	w := &expiryWrites{kick: make(chan struct{}, 1)}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var open, held int // what this partition added to the gauges
	report := func() {
		t.m.PendingAcks.Add(float64(s.open() - open))
		t.m.ExpiryEntries.Add(float64(s.held() - held))
		open, held = s.open(), s.held()
	}
	for {
		select {
		case <-ctx.Done():
			<-fetched
			w.wait(expiryFlushTimeout)
			for _, k := range w.takeFailed() {
				s.writeFailed(k)
			}
			g.setOffset(partition, s.commitOffset())
			s.release()
			report()
			return
		case m := <-msgs:
			rc := &pb.Receipt{}
			if proto.Unmarshal(m.Value, rc) != nil {
				rc = nil // not a receipt: skipped
			}
			if d := s.apply(rc, m.Offset, m.Time); d != "" {
				t.m.ExpiryDropped.WithLabelValues(d).Inc()
			}
			if !caughtUp && m.Offset+1 >= end {
				caughtUp = true
				t.log.Debug("receipts partition read up to its end", "partition", partition, "open", s.open(), "held", s.held())
			}
		case <-timer.C:
		case <-w.kick:
			for _, k := range w.takeFailed() {
				s.writeFailed(k)
			}
		}
		if caughtUp {
			for _, rc := range s.expire(t.now()) {
				t.writeExpired(rc, w)
			}
		}
		g.setOffset(partition, s.commitOffset())
		report()
		if due, ok := s.nextDue(); ok && caughtUp {
			timer.Reset(max(due.Sub(t.now()), 0))
		}
	}
}

// bounds asks for the partition's first and end offsets, retrying until ctx ends.
func (t *expiryTracker) bounds(ctx context.Context, partition int) (first, end int64, ok bool) {
	for {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		res, err := t.client.ListOffsets(rctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
			t.topic: {kafka.FirstOffsetOf(partition), kafka.LastOffsetOf(partition)},
		}})
		cancel()
		if err == nil {
			for _, po := range res.Topics[t.topic] {
				if po.Partition == partition && po.Error == nil {
					return po.FirstOffset, po.LastOffset, true
				}
				if po.Error != nil {
					err = po.Error
				}
			}
		}
		if ctx.Err() != nil {
			return 0, 0, false
		}
		t.log.Warn("cannot list the receipts partition's offsets; retrying", "partition", partition, "err", err)
		select {
		case <-ctx.Done():
			return 0, 0, false
		case <-time.After(t.o.JoinGroupBackoff):
		}
	}
}

func (t *expiryTracker) writeExpired(rc *pb.Receipt, w *expiryWrites) {
	k := ackKey{rc.MessageId, rc.UserId, rc.SessionId}
	w.inflight.Add(1)
	t.m.ExpiryWritten.Inc()
	t.writer.write(rc, func(err error) {
		if err != nil {
			w.fail(k)
		}
		w.inflight.Done()
	})
}

// expiryWrites follows one partition's EXPIRED writes: failures reopen their entries, and a
// revoked partition waits for the writes in flight.
type expiryWrites struct {
	inflight sync.WaitGroup
	kick     chan struct{} // a write failed

	mu     sync.Mutex // guards failed
	failed []ackKey
}

func (w *expiryWrites) fail(k ackKey) {
	w.mu.Lock()
	w.failed = append(w.failed, k)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *expiryWrites) takeFailed() []ackKey {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.failed
	w.failed = nil
	return out
}

// wait waits at most limit for the writes in flight; those still pending stay expiring and
// hold the commit back, so the next owner writes them again if they never land. (Past the
// limit its helper goroutine ends with the last write, which the writer's own timeouts bound.)
func (w *expiryWrites) wait(limit time.Duration) {
	done := make(chan struct{})
	go func() {
		w.inflight.Wait()
		close(done)
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}
