// Package events publishes session events (connected, disconnected, replaced, resumed) to the
// TCPGateway's events topic for backends (presence). The data plane never waits for it: an
// event is put on a bounded in-memory queue, or dropped and counted when the queue is full,
// and one goroutine writes the queue to Kafka.
package events

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

const (
	// maxBatch bounds the events one write takes off the queue.
	maxBatch = 512
	// batchTimeout: kafka-go's default (1 s) would hold each partition's batch for a second;
	// events are not latency-critical, but presence a second late for no reason is poor.
	batchTimeout = 5 * time.Millisecond
	// dialTimeout bounds each connection attempt to a broker.
	dialTimeout = 5 * time.Second
	// writeTimeout and maxAttempts bound how long one batch may hold the writer while Kafka
	// is down: meanwhile new events fill the queue and, once it is full, are dropped.
	writeTimeout = 5 * time.Second
	maxAttempts  = 3
	// writeBudget bounds a whole WriteMessages: kafka-go's own timeouts do not cover its wait
	// for the cluster's first metadata, which a broker stalling in the SASL exchange holds
	// without end (kafka-go clears the connection's deadline before SASL). It exceeds
	// writeTimeout × maxAttempts plus kafka-go's backoff (at most 1 s each), so it cuts no
	// produce attempt that kafka-go itself would still end.
	writeBudget = maxAttempts*writeTimeout + dialTimeout
)

// Options configure a Publisher.
type Options struct {
	Brokers  []string
	Security kafkasec.Security
	Topic    string
	ServerID string
	// QueueLength bounds the events waiting for Kafka (kafka.eventsQueue).
	QueueLength int
	// OmitRemoteAddress leaves remote_address empty (kafka.eventsOmitRemoteAddress).
	OmitRemoteAddress bool
	Metrics           *metrics.Events
	Logger            *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Kinds are the kind label values of tcpgw_session_events_published_total.
func Kinds() []string {
	return []string{kindLabel(pb.SessionEvent_KIND_CONNECTED), kindLabel(pb.SessionEvent_KIND_DISCONNECTED),
		kindLabel(pb.SessionEvent_KIND_REPLACED), kindLabel(pb.SessionEvent_KIND_RESUMED)}
}

func kindLabel(k pb.SessionEvent_Kind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "KIND_"))
}

// Publisher queues session events and writes them to Kafka from one goroutine. Its methods
// never block on Kafka and are safe for concurrent use.
type Publisher struct {
	o     Options
	now   func() time.Time
	epoch int64 // process start, Unix ms: with ServerID it names the process in every event
	w     *kafka.Writer
	tr    *kafka.Transport
	done  chan struct{} // closed when run returned
	// budget is writeBudget; tests shorten it before the first event.
	budget time.Duration
	lost   lossLog // owned by run's goroutine

	// Guarded by mu: seq is taken and the event queued (or dropped) under one lock, so the
	// queue's order is seq order and a dropped event leaves a gap in the sequence.
	mu      sync.Mutex
	seq     uint64
	stopped bool
	queue   chan *pb.SessionEvent // closed by Close, under mu
}

// New starts a publisher; Close stops it.
func New(o Options) *Publisher {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	tr := o.Security.Transport(o.ServerID, dialTimeout)
	p := &Publisher{
		o: o, now: now, epoch: now().UnixMilli(), tr: tr, done: make(chan struct{}), budget: writeBudget,
		queue: make(chan *pb.SessionEvent, o.QueueLength),
		w: &kafka.Writer{
			Addr:      kafka.TCP(o.Brokers...),
			Transport: tr,
			Topic:     o.Topic,
			// Keyed by user id with the Java client's partitioner (murmur2): a user's events
			// share one partition, in this pod's order.
			Balancer:     &kafka.Murmur2Balancer{},
			BatchTimeout: batchTimeout,
			BatchSize:    maxBatch,
			RequiredAcks: kafka.RequireAll,
			WriteTimeout: writeTimeout,
			MaxAttempts:  maxAttempts,
			// Synchronous: the goroutine waits for each batch, so a slow Kafka backs up into
			// the bounded queue (and drops), never into unbounded buffers inside the writer.
		},
	}
	p.lost = lossLog{log: o.Logger, now: now}
	go p.run()
	return p
}

// Epoch is the process's epoch as events carry it.
func (p *Publisher) Epoch() int64 { return p.epoch }

// ConnectionID formats a connection's id: unique across pods and restarts.
func ConnectionID(serverID string, epoch int64, conn uint64) string {
	return serverID + "/" + strconv.FormatInt(epoch, 10) + "/" + strconv.FormatUint(conn, 10)
}

func (p *Publisher) event(kind pb.SessionEvent_Kind, s *session.Session, conn uint64) *pb.SessionEvent {
	ev := &pb.SessionEvent{
		Kind:          kind,
		UserId:        s.UserID,
		SessionId:     s.SessionID,
		DeviceId:      s.DeviceID,
		ClientVersion: s.ClientVersion,
		ServerId:      p.o.ServerID,
		ConnectionId:  ConnectionID(p.o.ServerID, p.epoch, conn),
		AtMs:          p.now().UnixMilli(),
		Epoch:         p.epoch,
	}
	if !p.o.OmitRemoteAddress {
		ev.RemoteAddress = s.Remote
	}
	return ev
}

// Connected publishes CONNECTED, or RESUMED with the resume's status when the handshake
// asked to resume (result is nil otherwise).
func (p *Publisher) Connected(s *session.Session, conn uint64, result *pb.ResumeResult) {
	if result == nil {
		p.publish(p.event(pb.SessionEvent_KIND_CONNECTED, s, conn))
		return
	}
	ev := p.event(pb.SessionEvent_KIND_RESUMED, s, conn)
	ev.ResumeStatus = result.Status
	p.publish(ev)
}

// Replaced publishes REPLACED for old, taken over by the connection numbered by.
func (p *Publisher) Replaced(old *session.Session, oldConn, by uint64) {
	ev := p.event(pb.SessionEvent_KIND_REPLACED, old, oldConn)
	ev.ReplacedBy = ConnectionID(p.o.ServerID, p.epoch, by)
	p.publish(ev)
}

// Disconnected publishes DISCONNECTED with the close reason and the connection's duration.
func (p *Publisher) Disconnected(s *session.Session, conn uint64, reason session.CloseReason) {
	ev := p.event(pb.SessionEvent_KIND_DISCONNECTED, s, conn)
	ev.CloseReason = string(reason)
	ev.DurationMs = ev.AtMs - s.Connected.UnixMilli()
	p.publish(ev)
}

// publish numbers ev and queues it, or drops it (counted) when the queue is full.
func (p *Publisher) publish(ev *pb.SessionEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	ev.Seq = p.seq
	if p.stopped {
		p.o.Metrics.Dropped.WithLabelValues(metrics.EventStopped).Inc()
		return
	}
	select {
	case p.queue <- ev:
	default:
		p.o.Metrics.Dropped.WithLabelValues(metrics.EventQueueFull).Inc()
	}
}

// run writes the queue to Kafka in batches until Close closed it and it is empty.
func (p *Publisher) run() {
	defer close(p.done)
	defer p.lost.flush()
	batch := make([]kafka.Message, 0, maxBatch)
	kinds := make([]string, 0, maxBatch)
	for ev := range p.queue {
		batch, kinds = batch[:0], kinds[:0]
		batch, kinds = p.appendMessage(batch, kinds, ev)
	fill:
		for len(batch) < maxBatch {
			select {
			case ev, ok := <-p.queue:
				if !ok {
					break fill
				}
				batch, kinds = p.appendMessage(batch, kinds, ev)
			default:
				break fill
			}
		}
		p.write(batch, kinds)
	}
}

func (p *Publisher) appendMessage(batch []kafka.Message, kinds []string, ev *pb.SessionEvent) ([]kafka.Message, []string) {
	value, err := proto.Marshal(ev)
	if err != nil { // cannot happen for this message; counted rather than ignored
		p.o.Metrics.Dropped.WithLabelValues(metrics.EventWriteFailed).Inc()
		return batch, kinds
	}
	kind := kindLabel(ev.Kind)
	return append(batch, kafka.Message{Key: []byte(ev.UserId), Value: value,
		Headers: []kafka.Header{{Key: "kind", Value: []byte(kind)}}}), append(kinds, kind)
}

// write stores one batch; kafka-go reports per-message failures as WriteErrors.
func (p *Publisher) write(batch []kafka.Message, kinds []string) {
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.budget)
	err := p.w.WriteMessages(ctx, batch...)
	cancel()
	var perMessage kafka.WriteErrors
	failed := 0
	for i := range batch {
		if err != nil && (!errors.As(err, &perMessage) || perMessage[i] != nil) {
			failed++
			continue
		}
		p.o.Metrics.Published.WithLabelValues(kinds[i]).Inc()
	}
	if failed > 0 {
		p.o.Metrics.Dropped.WithLabelValues(metrics.EventWriteFailed).Add(float64(failed))
		p.lost.failed(failed, err)
	}
}

// Close stops taking events and writes what is queued until ctx ends; what is left then is
// dropped (counted as stopped). Call it after the drain, so the drain's DISCONNECTED events
// go out.
func (p *Publisher) Close(ctx context.Context) {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		close(p.queue)
	}
	p.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		// The writer's current batch is bounded by writeBudget; the rest of
		// the queue is not written.
		left := 0
		for range p.queue {
			left++
		}
		p.o.Metrics.Dropped.WithLabelValues(metrics.EventStopped).Add(float64(left))
		<-p.done
	}
	_ = p.w.Close()
	p.tr.CloseIdleConnections()
}
