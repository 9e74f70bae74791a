package downlink

import (
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/protocol"
	"github.com/tcpgateway/tcpgateway/gateway/protocol/pb"
	"github.com/tcpgateway/tcpgateway/gateway/session"
)

// handle delivers one record to the target sessions held here. Bad records are counted and
// skipped: one bad producer must not stop delivery for everyone.
func (c *Consumer) handle(m kafka.Message) {
	var d pb.Downlink
	if err := proto.Unmarshal(m.Value, &d); err != nil {
		c.bad.report(c, metrics.RecordUndecoded, m, err.Error())
		return
	}
	switch {
	case d.MessageId == "":
		c.bad.report(c, metrics.RecordNoMessage, m, "empty message_id")
		return
	case d.Target == nil || d.Target.Kind == nil:
		c.bad.report(c, metrics.RecordNoTarget, m, "no target")
		return
	}

	targets := Targets(c.o.Sessions.Sessions(), d.Target)
	if len(targets) == 0 {
		c.o.Metrics.Records.WithLabelValues(metrics.RecordSkipped).Inc()
		return
	}
	pos := &pb.Position{Partition: int32(m.Partition), Offset: m.Offset}
	now := c.now()
	wantsReceipt := d.AckRequired || d.ReplyExpected
	if d.ExpiresAtMs != 0 && now.UnixMilli() >= d.ExpiresAtMs {
		c.o.Metrics.Records.WithLabelValues(metrics.RecordExpired).Inc()
		if wantsReceipt {
			for _, s := range targets {
				c.receipt(pb.Receipt_KIND_EXPIRED, &d, s, pos, nil)
			}
		}
		return
	}

	frame, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{
		MessageId:     d.MessageId,
		Payload:       d.Payload,
		Position:      pos,
		AckRequired:   d.AckRequired,
		ReplyExpected: d.ReplyExpected,
		ExpiresAtMs:   d.ExpiresAtMs,
		CreatedAtMs:   d.CreatedAtMs,
		CorrelationId: d.CorrelationId,
	}}}, c.o.MaxFrameBytes)
	if err != nil {
		c.bad.report(c, "too_large", m, err.Error())
		return
	}
	// Encoded once, shared read-only by every target session's queue.
	for _, s := range targets {
		c.o.Sessions.SendEncoded(s, "push", frame)
		if wantsReceipt {
			c.receipt(pb.Receipt_KIND_DELIVERED, &d, s, pos, nil)
		}
	}
	c.o.Metrics.Records.WithLabelValues(metrics.RecordDelivered).Inc()
	c.o.Metrics.Deliveries.Add(float64(len(targets)))
	if d.CreatedAtMs > 0 {
		c.o.Metrics.Latency.Observe(max(now.Sub(time.UnixMilli(d.CreatedAtMs)), 0).Seconds())
	}
}

// Targets resolves a record's target to the sessions held here (none when they are elsewhere).
func Targets(m *session.Manager, t *pb.Target) []*session.Session {
	switch k := t.Kind.(type) {
	case *pb.Target_UserId:
		return m.User(nil, k.UserId)
	case *pb.Target_SessionId:
		if s, ok := m.Get(k.SessionId); ok {
			return []*session.Session{s}
		}
	case *pb.Target_Group:
		return m.Group(nil, k.Group)
	case *pb.Target_All:
		if k.All {
			return m.All(nil)
		}
	}
	return nil
}

// badRecords logs each kind of bad record once (then only counts it), so a flood of garbage
// cannot flood the logs.
type badRecords struct{ logged sync.Map }

func (b *badRecords) report(c *Consumer, kind string, m kafka.Message, detail string) {
	c.o.Metrics.Records.WithLabelValues(kind).Inc()
	if _, seen := b.logged.LoadOrStore(kind, true); !seen {
		c.log.Warn("skipping bad downlink record (further ones of this kind are only counted)",
			"kind", kind, "partition", m.Partition, "offset", m.Offset, "detail", detail)
	}
}
