package downlink

import (
	"context"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/protocol/pb"
	"github.com/tcpgateway/tcpgateway/gateway/session"
)

// receiptWriter publishes receipts without ever blocking delivery: the writer is
// asynchronous and reports each batch's outcome to the metrics.
type receiptWriter struct {
	w        *kafka.Writer
	serverID string
}

func newReceiptWriter(brokers []string, topic, serverID string, m *metrics.Downlink, log *slog.Logger) *receiptWriter {
	return &receiptWriter{serverID: serverID, w: &kafka.Writer{
		Addr:  kafka.TCP(brokers...),
		Topic: topic,
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
				log.Warn("receipts lost", "count", len(msgs), "err", err)
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

func (r *receiptWriter) close() { _ = r.w.Close() }

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

// PushAck turns a client's PUSH_ACK into an ACKED receipt. Whichever pod holds the session
// writes it, so an ack sent after a reconnect to another pod still reaches the publisher (and
// the owner of the receipts partition, which then writes no EXPIRED).
func (c *Consumer) PushAck(s *session.Session, ack *pb.PushAck) {
	if ack.MessageId == "" {
		return
	}
	c.receipt(pb.Receipt_KIND_ACKED, c.answered(ack.MessageId, ack.Position), s, ack.Position, nil)
}

// PushReply turns a client's PUSH_REPLY into a REPLIED receipt carrying the reply.
func (c *Consumer) PushReply(s *session.Session, reply *pb.PushReply) {
	if reply.MessageId == "" {
		return
	}
	c.receipt(pb.Receipt_KIND_REPLIED, c.answered(reply.MessageId, reply.Position), s, reply.Position, reply.Payload)
}

// answered is what an answer's receipt says about the push: its id and, when the window still
// holds it, its expiry.
func (c *Consumer) answered(messageID string, pos *pb.Position) *pb.Downlink {
	d := &pb.Downlink{MessageId: messageID}
	if pos != nil {
		c.mu.Lock()
		d.ExpiresAtMs = c.win.expiryLocked(pos, messageID)
		c.mu.Unlock()
	}
	return d
}
