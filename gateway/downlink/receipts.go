package downlink

import (
	"context"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// receiptWriter publishes receipts without ever blocking delivery: the writer is
// asynchronous and reports each batch's outcome to the metrics.
type receiptWriter struct {
	w        *kafka.Writer
	tr       *kafka.Transport
	serverID string
}

func newReceiptWriter(brokers []string, sec kafkasec.Security, topic, serverID string, m *metrics.Downlink, log *slog.Logger) *receiptWriter {
	tr := sec.Transport(serverID, requestTimeout)
	return &receiptWriter{serverID: serverID, tr: tr, w: &kafka.Writer{
		Addr:      kafka.TCP(brokers...),
		Transport: tr,
		Topic:     topic,
		// Keyed by message id, partitioned like the Java client (murmur2), so all receipts of
		// one message are ordered.
		Balancer: &kafka.Murmur2Balancer{},
		// The default BatchTimeout (1 s) would add a second to every ack a publisher waits for.
		BatchTimeout: 2 * time.Millisecond,
		BatchSize:    500,
		RequiredAcks: kafka.RequireAll,
		Async:        true,
		Completion: func(msgs []kafka.Message, err error) {
			result := "ok"
			if err != nil {
				result = "error"
				log.Warn("receipts lost", "count", len(msgs), "reason", kafkasec.Reason(err), "err", err)
			}
			for _, msg := range msgs {
				m.Receipts.WithLabelValues(receiptKind(msg), result).Inc()
				if done, ok := msg.WriterData.(func(error)); ok {
					done(err)
				}
			}
		},
	}}
}

func receiptKind(m kafka.Message) string {
	for _, h := range m.Headers {
		if h.Key == "kind" {
			return string(h.Value)
		}
	}
	return "unknown"
}

// write queues a receipt; done (optional) gets the outcome once Kafka stored it or the
// writer gave up.
func (r *receiptWriter) write(rc *pb.Receipt, done func(error)) {
	value, err := proto.Marshal(rc)
	if err == nil {
		msg := kafka.Message{
			Key: []byte(rc.MessageId), Value: value,
			Headers: []kafka.Header{{Key: "kind", Value: []byte(rc.Kind.String())}},
		}
		if done != nil {
			msg.WriterData = done
		}
		// Asynchronous: an error here means the message was not queued (writer closed), and
		// Completion will not see it.
		err = r.w.WriteMessages(context.Background(), msg)
	}
	if err != nil && done != nil {
		done(err)
	}
}

func (r *receiptWriter) close() {
	_ = r.w.Close()
	r.tr.CloseIdleConnections()
}

// receipt writes a receipt about d for session s, carrying d's expiry: the expiry tracker
// (expiry.go) keeps a DELIVERED open until then, and the tombstone of an answer until then
// plus a margin.
func (c *Consumer) receipt(kind pb.Receipt_Kind, d *pb.Downlink, s *session.Session, pos *pb.Position, payload []byte) {
	if c.receipts == nil {
		return
	}
	c.receipts.write(&pb.Receipt{
		MessageId:     d.GetMessageId(),
		CorrelationId: d.GetCorrelationId(),
		Kind:          kind,
		Payload:       payload,
		SessionId:     s.SessionID,
		UserId:        s.UserID,
		ServerId:      c.o.ServerID,
		AtMs:          c.now().UnixMilli(),
		Position:      pos,
		ExpiresAtMs:   d.GetExpiresAtMs(),
	}, nil)
}

// Answered turns an answer the server accepted (the session was sent the push) into an ACKED
// or REPLIED receipt naming the answering session and user and carrying the push's
// correlation id and expiry. Whichever pod holds the session writes it, so the owner of the
// receipts partition then writes no EXPIRED.
func (c *Consumer) Answered(s *session.Session, a session.Answerable, reply bool, payload []byte) {
	kind := pb.Receipt_KIND_ACKED
	if reply {
		kind = pb.Receipt_KIND_REPLIED
	}
	d := &pb.Downlink{MessageId: a.MessageID, CorrelationId: a.CorrelationID, ExpiresAtMs: a.ExpiresAtMs}
	c.receipt(kind, d, s, &pb.Position{Partition: a.Partition, Offset: a.Offset}, payload)
}

// SentBefore finds, in the replay window, the record at pos with this message id if it asked
// for an answer, has not expired and its target selects s: a push sent to the session's
// identity on an earlier connection (on this pod or another: every pod holds every record).
func (c *Consumer) SentBefore(s *session.Session, messageID string, pos *pb.Position, nowMs int64) (session.Answerable, bool) {
	if pos == nil {
		return session.Answerable{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.win.findLocked(pos, messageID)
	if rec == nil || !targetsSession(rec.d.Target, s) || !(rec.d.AckRequired || rec.d.ReplyExpected) ||
		(rec.d.ExpiresAtMs != 0 && nowMs >= rec.d.ExpiresAtMs) {
		return session.Answerable{}, false
	}
	return answerable(rec.d, rec.partition, rec.offset), true
}

// answerable is what a session keeps of a push that waits for its answer.
func answerable(d *pb.Downlink, partition int, offset int64) session.Answerable {
	return session.Answerable{
		MessageID: d.MessageId, CorrelationID: d.CorrelationId, Partition: int32(partition), Offset: offset,
		ExpiresAtMs: d.ExpiresAtMs, Ack: d.AckRequired, Reply: d.ReplyExpected,
	}
}
