// Package downlink delivers Kafka downlink records to the sessions this gateway holds, writes
// receipts for deliveries, acks and replies, and, for the receipts partitions this pod owns,
// EXPIRED receipts for deliveries that went unanswered (expiry.go, expiry_tracker.go).
//
// Every pod reads every partition of the downlink topic. It does so without a consumer-group
// membership: one reader per partition, positioned explicitly, with progress committed to the
// group coordinator under the pod's own group id ("<topic>.<serverID>", the StatefulSet pod
// name) the way a Java consumer using assign() does. That sidesteps what group membership
// costs here — rebalances on every restart, session-timeout waits without static membership
// (kafka-go #493), stale messages after a rebalance (#1398), and losses when a new member
// starts at the latest offset before it is assigned (#711) — and it lets readiness mean "every
// partition is positioned": a session that connects after that misses no record.
package downlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/session"
)

// Tuning, chosen for latency on a topic that sees steady small records:
const (
	// fetchMaxWait: how long the broker may hold a fetch open when a partition is idle. The
	// broker answers as soon as a record arrives, so this does not delay delivery; much lower
	// values make idle fetches time out on a loaded 2-core box (kafka-go keeps MaxWait/4 slack).
	fetchMaxWait = 500 * time.Millisecond
	// commitInterval: progress is committed this often (and at Close). A crash replays at most
	// this much, and the client drops replays by position.
	commitInterval = time.Second
	// probeInterval: metadata probe for readiness and for partitions added by the operator.
	probeInterval = 2 * time.Second
	// requestTimeout bounds each admin request (metadata, offsets, commits).
	requestTimeout = 5 * time.Second
)

// Sessions is what the consumer needs from the server: the registry and the send path.
// SendEncoded queues a frame and starts the session's flush (replays); QueueEncoded queues
// one without starting it and reports whether the caller owes the session a Wake
// (session.Queue), as live records are delivered in batches; DeliverEncoded sends a lone
// record's frame, written at once when the session is idle (session.Deliver), its write
// counted in t.
type Sessions interface {
	Sessions() *session.Manager
	SendEncoded(s *session.Session, kind string, frame []byte)
	QueueEncoded(s *session.Session, kind string, frame []byte) bool
	DeliverEncoded(s *session.Session, kind string, frame []byte, t *session.Tally)
}

// Options configure a Consumer.
type Options struct {
	Brokers []string
	// Security is the TLS and SASL of every connection to the brokers (the zero value:
	// plaintext).
	Security      kafkasec.Security
	Topic         string
	ReceiptsTopic string
	ServerID      string
	MaxFrameBytes int
	// PendingAnswers bounds the pushes awaiting an answer that each session holds as
	// answerable (config limits.pendingAnswers).
	PendingAnswers int
	// ReplayMaxRecords (per partition) and ReplayMaxAge bound the replay window.
	ReplayMaxRecords int
	ReplayMaxAge     time.Duration
	// Expiry tunes the tracker of unanswered deliveries (only with a ReceiptsTopic).
	Expiry   ExpiryOptions
	Sessions Sessions
	Metrics  *metrics.Downlink
	Logger   *slog.Logger
	Now      func() time.Time
}

// Consumer reads the downlink topic and delivers records.
type Consumer struct {
	o        Options
	group    string
	client   *kafka.Client
	tr       *kafka.Transport // client's; its idle connections are closed at shutdown
	dialer   *kafka.Dialer    // the partition readers'
	receipts *receiptWriter
	now      func() time.Time
	log      *slog.Logger
	bad      badRecords

	expiry *expiryTracker // owns receipts partitions, writes EXPIRED; nil without receipts

	started atomic.Bool // every partition known at start is positioned
	missing atomic.Bool // the last probe found the downlink or receipts topic missing
	// down (a string) is the kafkasec reason of the last probe's failure, "" when Kafka
	// answered (missing topics included: missing): kafka_auth_failed, kafka_tls_failed or
	// kafka_unreachable (also before the first probe). Written by Run's goroutine.
	down atomic.Value

	probeLogged string // owned by Run's goroutine: the probe outcome last logged, "ok" or a reason

	missingLog rate.Sometimes // owned by Run's goroutine (poll)

	mu      sync.Mutex // guards readers, win, dirty
	readers map[int]*kafka.Reader
	win     window
	dirty   map[int]bool // the partition's watermark moved since the last commit

	ends singleflight.Group // end-offset lookups of concurrent resumes (resume_ahead.go)

	wakes wakePass // the partitions' deliverers' sessions owed a wake (wakepass.go)

	wg sync.WaitGroup
}

// New prepares a consumer; Run starts it.
func New(o Options) (*Consumer, error) {
	if len(o.Brokers) == 0 || o.Topic == "" || o.ServerID == "" || o.Sessions == nil || o.Metrics == nil {
		return nil, errors.New("downlink: Brokers, Topic, ServerID, Sessions and Metrics are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReplayMaxRecords <= 0 {
		o.ReplayMaxRecords = 100000
	}
	if o.ReplayMaxAge <= 0 {
		o.ReplayMaxAge = 10 * time.Minute
	}
	tr := o.Security.Transport(o.ServerID, requestTimeout)
	c := &Consumer{
		o:          o,
		group:      o.Topic + "." + o.ServerID,
		client:     &kafka.Client{Addr: kafka.TCP(o.Brokers...), Timeout: requestTimeout, Transport: tr},
		tr:         tr,
		dialer:     o.Security.Dialer(o.ServerID, requestTimeout),
		now:        o.Now,
		log:        o.Logger.With("component", "downlink"),
		readers:    map[int]*kafka.Reader{},
		win:        window{maxAge: o.ReplayMaxAge, parts: map[int]*ring{}},
		dirty:      map[int]bool{},
		missingLog: rate.Sometimes{Interval: topicsMissingLogInterval},
	}
	c.down.Store(kafkasec.ReasonUnreachable) // until the first probe answers
	for _, r := range []string{kafkasec.ReasonAuthFailed, kafkasec.ReasonTLSFailed, kafkasec.ReasonUnreachable} {
		o.Metrics.KafkaErrors.WithLabelValues(r) // exported at 0, so rate() works from the first failure
	}
	if o.ReceiptsTopic != "" {
		c.receipts = newReceiptWriter(o.Brokers, o.Security, o.ReceiptsTopic, o.ServerID, o.Metrics, c.log)
		o.Expiry.defaults(o.ReplayMaxRecords)
		c.expiry = newExpiryTracker(o.Expiry, o.Brokers, o.Security, o.ReceiptsTopic, o.ServerID, c.receipts, o.Metrics, o.Logger, o.Now)
	}
	return c, nil
}

// Ready is the readiness check: "" once every partition has refilled its replay window up to
// where live delivery starts, and Kafka answers. While Kafka does not, it is the reason of the
// last probe's failure: kafka_auth_failed, kafka_tls_failed or kafka_unreachable; while Kafka
// answers that it does not know the downlink or receipts topic, topics_missing.
func (c *Consumer) Ready() string {
	if down := c.down.Load().(string); down != "" {
		return down
	}
	switch {
	case c.missing.Load():
		return kafkasec.ReasonTopicsMissing
	case !c.started.Load():
		return "downlink_starting"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.win.parts {
		if r.next < r.deliverFrom {
			return "downlink_refilling"
		}
	}
	return ""
}

// Run positions a reader on every partition and delivers until ctx is done, then commits
// what was handled. Kafka being unreachable is not an error: Run keeps probing and starts (or
// resumes) delivery when the broker answers.
func (c *Consumer) Run(ctx context.Context) error {
	probe := time.NewTicker(probeInterval)
	defer probe.Stop()
	commit := time.NewTicker(commitInterval)
	defer commit.Stop()

	if c.expiry != nil {
		if err := c.expiry.start(); err != nil {
			c.log.Error("cannot start the expiry tracker: unanswered pushes will not get EXPIRED receipts", "err", err)
		}
	}
	c.poll(ctx)
	for {
		select {
		case <-ctx.Done():
			c.shutdown()
			return nil
		case <-probe.C:
			c.poll(ctx)
		case <-commit.C:
			c.commit(ctx)
		}
	}
}

// poll probes the topic's metadata and starts readers for partitions not read yet: all of
// them the first time, then any the operator added.
func (c *Consumer) poll(ctx context.Context) {
	if c.topicsMissing(ctx) {
		return
	}
	parts, err := c.partitions(ctx)
	if err == nil {
		err = c.measureLag(ctx, parts)
	}
	if kafkasec.Reason(err) == kafkasec.ReasonTopicsMissing {
		// Deleted since the metadata probe, which kafka-go answers from its cache: Kafka
		// answered, so this is the missing-topics state, as the next metadata probe says.
		c.topicsAbsent(c.topics(), []string{c.o.Topic})
		return
	}
	if err != nil {
		c.probeFailed(err)
		return
	}
	c.topicsFound()
	c.probeAnswered("topic", c.o.Topic, "partitions", len(parts))
	c.mu.Lock()
	held := 0
	for _, r := range c.win.parts {
		r.expire(c.now().Add(-c.o.ReplayMaxAge))
		held += r.size
	}
	c.mu.Unlock()
	c.o.Metrics.Window.Set(float64(held))

	c.mu.Lock()
	var missing []int
	for _, p := range parts {
		if _, ok := c.readers[p]; !ok {
			missing = append(missing, p)
		}
	}
	first := len(c.readers) == 0
	c.mu.Unlock()
	if len(missing) == 0 {
		return
	}
	starts, err := c.startOffsets(ctx, missing, first)
	if err != nil {
		c.log.Warn("cannot position downlink readers", "err", err)
		return
	}
	perPartition := max(c.o.ReplayMaxRecords/max(len(parts), 1), 1)
	fills := map[int]int64{}
	if first {
		if fills, err = c.fillOffsets(ctx, starts, perPartition); err != nil {
			c.log.Warn("cannot position downlink readers", "err", err)
			return
		}
	}
	for _, p := range missing {
		fill, ok := fills[p]
		if !ok {
			fill = starts[p]
		}
		c.startReader(ctx, p, fill, starts[p], perPartition)
	}
	c.started.Store(true)
}

// topicsMissing probes whether the downlink and receipts topics exist; Kafka answering but
// not knowing one (a gateway started before the operator created its topics, or a topic
// deleted) is topics_missing, not kafka_unreachable. It reports true when poll has nothing
// more to do: the topics are missing, or Kafka did not answer.
func (c *Consumer) topicsMissing(ctx context.Context) bool {
	topics := c.topics()
	missing, err := missingTopics(ctx, c.client, topics...)
	if err != nil {
		c.probeFailed(err)
		return true
	}
	if len(missing) == 0 {
		return false // topicsFound once the leaders confirm it (poll)
	}
	c.topicsAbsent(topics, missing)
	return true
}

// topics are the topics whose absence makes the consumer not ready: downlink and receipts.
func (c *Consumer) topics() []string {
	if c.o.ReceiptsTopic == "" {
		return []string{c.o.Topic}
	}
	return []string{c.o.Topic, c.o.ReceiptsTopic}
}

// topicsFound ends the missing-topics state once the metadata probe knows the topics and the
// partition leaders answered for the downlink topic (the metadata cache may still show a
// topic deleted since: poll).
func (c *Consumer) topicsFound() {
	c.o.Metrics.TopicsMissing.Set(0)
	if c.missing.Swap(false) {
		c.log.Info("kafka topics found", "topics", c.topics())
	}
}

// topicsAbsent records a probe Kafka answered saying it does not know the missing ones of
// topics: readiness says topics_missing and tcpgw_kafka_up stays 1.
func (c *Consumer) topicsAbsent(topics, missing []string) {
	c.o.Metrics.TopicsMissing.Set(float64(len(missing)))
	c.probeAnswered("topics", topics)
	c.missing.Store(true)
	c.missingLog.Do(func() {
		c.log.Warn("kafka topics missing; not ready until they exist", "reason", kafkasec.ReasonTopicsMissing, "topics", missing)
	})
}

// measureLag asks the partition leaders for their end offsets: the liveness probe (kafka-go
// answers Metadata requests from its cache, so they keep succeeding while brokers are down)
// and the lag of partitions that are idle.
func (c *Consumer) measureLag(ctx context.Context, parts []int) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	reqs := make([]kafka.OffsetRequest, 0, len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	res, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{c.o.Topic: reqs}})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, po := range res.Topics[c.o.Topic] {
		if po.Error != nil {
			return fmt.Errorf("partition %d: %w", po.Partition, po.Error)
		}
		if r, ok := c.win.parts[po.Partition]; ok {
			r.learnEnd(po.LastOffset)
			c.o.Metrics.Lag.WithLabelValues(strconv.Itoa(po.Partition)).Set(float64(max(po.LastOffset-r.next, 0)))
		}
	}
	return nil
}

func (c *Consumer) partitions(ctx context.Context) ([]int, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	md, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{c.o.Topic}})
	if err != nil {
		return nil, err
	}
	for _, t := range md.Topics {
		if t.Name != c.o.Topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("topic %s: %w", c.o.Topic, t.Error)
		}
		parts := make([]int, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
		return parts, nil
	}
	return nil, fmt.Errorf("topic %s not in metadata", c.o.Topic)
}

// startOffsets decides where each partition's reader starts: the committed offset of this
// pod's group when there is one; otherwise the end of the partition for the partitions that
// exist when the pod first starts (it holds no session yet, so nothing before is for it), and
// the beginning for partitions that appear later (every record in them is new).
func (c *Consumer) startOffsets(ctx context.Context, parts []int, first bool) (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	committed, err := c.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: c.group, Topics: map[string][]int{c.o.Topic: parts}})
	if err != nil {
		return nil, fmt.Errorf("while fetching committed offsets: %w", err)
	}
	if committed.Error != nil {
		return nil, fmt.Errorf("while fetching committed offsets: %w", committed.Error)
	}
	starts := map[int]int64{}
	var unknown []kafka.OffsetRequest
	for _, p := range committed.Topics[c.o.Topic] {
		if p.Error == nil && p.CommittedOffset >= 0 {
			starts[p.Partition] = p.CommittedOffset
		}
	}
	for _, p := range parts {
		if _, ok := starts[p]; !ok {
			if first {
				unknown = append(unknown, kafka.LastOffsetOf(p))
			} else {
				unknown = append(unknown, kafka.FirstOffsetOf(p))
			}
		}
	}
	if len(unknown) > 0 {
		res, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{c.o.Topic: unknown}})
		if err != nil {
			return nil, fmt.Errorf("while listing offsets: %w", err)
		}
		for _, po := range res.Topics[c.o.Topic] {
			if po.Error != nil {
				return nil, fmt.Errorf("while listing offsets of partition %d: %w", po.Partition, po.Error)
			}
			if first {
				starts[po.Partition] = po.LastOffset
			} else {
				starts[po.Partition] = po.FirstOffset
			}
		}
	}
	return starts, nil
}

// fillOffsets decides where each partition's reader starts so that the replay window is
// refilled after a (re)start: the records of the last ReplayMaxAge, at most perPartition of
// them, before the live start. Those fill the window without being delivered.
func (c *Consumer) fillOffsets(ctx context.Context, starts map[int]int64, perPartition int) (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var reqs []kafka.OffsetRequest
	for p := range starts {
		reqs = append(reqs, kafka.TimeOffsetOf(p, c.now().Add(-c.o.ReplayMaxAge)), kafka.FirstOffsetOf(p))
	}
	res, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{c.o.Topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("while listing offsets by time: %w", err)
	}
	fills := map[int]int64{}
	for _, po := range res.Topics[c.o.Topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("partition %d: %w", po.Partition, po.Error)
		}
		start := starts[po.Partition]
		fill := max(po.FirstOffset, start-int64(perPartition))
		for off := range po.Offsets { // the first offset at or after the cutoff time
			fill = max(fill, off)
		}
		fills[po.Partition] = min(fill, start)
	}
	return fills, nil
}

func (c *Consumer) startReader(ctx context.Context, partition int, offset, deliverFrom int64, capacity int) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        c.o.Brokers,
		Dialer:         c.dialer,
		Topic:          c.o.Topic,
		Partition:      partition,
		MinBytes:       1,
		MaxBytes:       10 << 20,
		MaxWait:        fetchMaxWait,
		ReadBackoffMin: 100 * time.Millisecond,
		ReadBackoffMax: time.Second,
		MaxAttempts:    1 << 30, // keep retrying while the broker is away; readiness reports it
	})
	if err := r.SetOffset(offset); err != nil {
		c.log.Error("cannot position reader", "partition", partition, "offset", offset, "err", err)
		_ = r.Close()
		return
	}
	c.mu.Lock()
	c.readers[partition] = r
	c.win.parts[partition] = newRing(capacity, offset, deliverFrom)
	c.mu.Unlock()
	c.log.Info("reading partition", "partition", partition, "from", offset, "deliverFrom", deliverFrom, "group", c.group)

	// Two goroutines per partition: the fetcher takes records from kafka-go as they arrive;
	// the deliverer handles them in batches (batch.go), so that what was fetched together
	// reaches every target session's queue before that session's flush starts, and the
	// partitions' batches that overlap are written in one pass (wakepass.go).
	fetched := make(chan kafka.Message, batchMaxRecords)
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		defer close(fetched)
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, io.EOF) {
					return
				}
				c.log.Warn("fetch failed", "partition", partition, "err", err)
				continue
			}
			select {
			case fetched <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer c.wg.Done()
		lag := c.o.Metrics.Lag.WithLabelValues(strconv.Itoa(partition))
		deliverBatches(fetched, &c.wakes, c.o.Metrics.BatchRecords, func(m kafka.Message, b *batch) {
			lag.Set(float64(max(m.HighWaterMark-m.Offset-1, 0)))
			c.handle(m, b)
		})
	}()
}

// commit records progress under this pod's group id, as a member-less ("simple consumer")
// commit.
func (c *Consumer) commit(ctx context.Context) {
	c.mu.Lock()
	var offsets []kafka.OffsetCommit
	for p := range c.dirty {
		// While refilling the window the reader is behind the committed offset: committing
		// there would move it back.
		if r := c.win.parts[p]; r.next >= r.deliverFrom {
			offsets = append(offsets, kafka.OffsetCommit{Partition: p, Offset: r.next})
			delete(c.dirty, p)
		}
	}
	c.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := c.client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID: c.group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{c.o.Topic: offsets},
	})
	if err == nil {
		for _, p := range res.Topics[c.o.Topic] {
			if p.Error != nil {
				err = p.Error
			}
		}
	}
	if err != nil {
		c.log.Warn("commit failed; will retry", "err", err)
		c.mu.Lock()
		for _, o := range offsets {
			c.dirty[o.Partition] = true
		}
		c.mu.Unlock()
	}
}

// shutdown stops the readers, commits what they handled, stops the expiry tracker and
// flushes the receipts.
func (c *Consumer) shutdown() {
	c.mu.Lock()
	readers := make([]*kafka.Reader, 0, len(c.readers))
	for _, r := range c.readers {
		readers = append(readers, r)
	}
	c.mu.Unlock()
	for _, r := range readers {
		_ = r.Close()
	}
	c.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	c.commit(ctx)
	// The tracker writes through the receipt writer: it stops first, leaving the expiry group
	// so that the other pods take its receipts partitions over at once.
	if c.expiry != nil {
		c.expiry.close()
	}
	if c.receipts != nil {
		c.receipts.close()
	}
	c.tr.CloseIdleConnections()
}
