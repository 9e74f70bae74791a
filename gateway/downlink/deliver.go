package downlink

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// handle records one fetched record in the replay window and queues it on the target
// sessions held here, adding it to b: the sessions it owes a wake are written to when the
// caller ends the batch (b.end); a lone record (b.lone) is written to each at once instead.
// Bad records are counted and skipped: one bad producer must not stop delivery for everyone.
func (c *Consumer) handle(m kafka.Message, b *batch) {
	d, kind, detail := decode(m)
	now := c.now()

	c.mu.Lock()
	r := c.win.parts[m.Partition]
	r.next = m.Offset + 1
	r.learnEnd(m.HighWaterMark)
	c.dirty[m.Partition] = true
	live := m.Offset >= r.deliverFrom
	var targets []*session.Session
	if kind == "" {
		r.push(record{partition: m.Partition, offset: m.Offset, at: now, d: d})
		if live {
			// Resolved under the same lock as a resume's snapshot: a resuming session is
			// either in these targets or gets this record replayed, never both or neither.
			targets = Targets(c.o.Sessions.Sessions(), d.Target)
		}
	}
	c.mu.Unlock()

	if kind != "" {
		if live {
			c.bad.report(c, kind, m, detail)
		}
		return
	}
	if !live {
		return // refilling the window after a restart
	}
	if len(targets) == 0 {
		c.o.Metrics.Records.WithLabelValues(metrics.RecordSkipped).Inc()
		return
	}
	pos := &pb.Position{Partition: int32(m.Partition), Offset: m.Offset}
	wantsReceipt := d.AckRequired || d.ReplyExpected
	if d.ExpiresAtMs != 0 && now.UnixMilli() >= d.ExpiresAtMs {
		c.o.Metrics.Records.WithLabelValues(metrics.RecordExpired).Inc()
		if wantsReceipt {
			for _, s := range targets {
				c.receipt(pb.Receipt_KIND_EXPIRED, d, s, pos, nil)
			}
		}
		return
	}
	frame, err := c.pushFrame(d, pos)
	if err != nil {
		c.bad.report(c, "too_large", m, err.Error())
		return
	}
	// Encoded once, shared read-only by every target session's queue.
	b.records++
	if wantsReceipt {
		// Written once the batch ends (by the pod's wake pass), after every DELIVERED receipt
		// of the record: a client's answer to the push cannot then be written before its
		// DELIVERED.
		b.lone = false
	}
	for _, s := range targets {
		if wantsReceipt {
			c.expectAnswer(s, d, m.Partition, m.Offset, now)
		}
		if b.lone {
			c.o.Sessions.DeliverEncoded(s, "push", frame, &b.written)
			b.count(len(frame))
		} else {
			b.queued(s, c.o.Sessions.QueueEncoded(s, "push", frame), len(frame))
		}
		if wantsReceipt {
			// Carries the expiry: the owner of its receipts partition writes EXPIRED if no
			// answer follows in time, whatever becomes of this pod.
			c.receipt(pb.Receipt_KIND_DELIVERED, d, s, pos, nil)
		}
	}
	c.o.Metrics.Records.WithLabelValues(metrics.RecordDelivered).Inc()
	c.o.Metrics.Deliveries.Add(float64(len(targets)))
	if d.CreatedAtMs > 0 {
		c.o.Metrics.Latency.Observe(max(now.Sub(time.UnixMilli(d.CreatedAtMs)), 0).Seconds())
	}
}

// decode parses a record; kind names what is wrong with a bad one ("" when fine).
func decode(m kafka.Message) (*pb.Downlink, string, string) {
	d := &pb.Downlink{}
	if err := proto.Unmarshal(m.Value, d); err != nil {
		return nil, metrics.RecordUndecoded, err.Error()
	}
	switch {
	case d.MessageId == "":
		return nil, metrics.RecordNoMessage, "empty message_id"
	case d.Target == nil || d.Target.Kind == nil:
		return nil, metrics.RecordNoTarget, "no target"
	}
	return d, "", ""
}

func (c *Consumer) pushFrame(d *pb.Downlink, pos *pb.Position) ([]byte, error) {
	return protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{
		MessageId:     d.MessageId,
		Payload:       d.Payload,
		Position:      pos,
		AckRequired:   d.AckRequired,
		ReplyExpected: d.ReplyExpected,
		ExpiresAtMs:   d.ExpiresAtMs,
		CreatedAtMs:   d.CreatedAtMs,
		CorrelationId: d.CorrelationId,
	}}}, c.o.MaxFrameBytes)
}

// Attach registers a session with the downlink atomically: under the window's lock it takes
// the watermarks and, for a resume, the records the session missed; attach (the server's
// handshake: queue HANDSHAKE_ACK, register the session) runs inside, and the missed records are
// queued right after it, before any live record can be. Replay + live delivery is therefore
// complete and in order. ctx bounds the wait for Kafka when the resume names positions this
// pod has not read yet (learnEndsAhead).
func (c *Consumer) Attach(ctx context.Context, s *session.Session, resume *pb.Resume, attach func(watermarks []*pb.Position, result *pb.ResumeResult)) {
	if resume != nil {
		c.learnEndsAhead(ctx, resume.Positions)
	}
	now := c.now()
	// A replayed push that waits for an answer gets its DELIVERED receipt like a live one
	// (written after the lock is released: deferred calls run last-in first-out). Copies: the
	// window's slots are reused once the lock is released.
	var delivered []record
	defer func() {
		for _, rec := range delivered {
			c.receipt(pb.Receipt_KIND_DELIVERED, rec.d, s, &pb.Position{Partition: int32(rec.partition), Offset: rec.offset}, nil)
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	watermarks := c.win.watermarksLocked()
	var replay []*record
	var result *pb.ResumeResult
	if resume != nil {
		replay, result = c.win.replayLocked(s, resume.Positions, now)
		c.o.Metrics.Resumes.WithLabelValues(strings.ToLower(strings.TrimPrefix(result.Status.String(), "STATUS_"))).Inc()
	}
	attach(watermarks, result)
	for _, rec := range replay {
		frame, err := c.pushFrame(rec.d, &pb.Position{Partition: int32(rec.partition), Offset: rec.offset})
		if err != nil {
			continue
		}
		if rec.d.AckRequired || rec.d.ReplyExpected {
			c.expectAnswer(s, rec.d, rec.partition, rec.offset, now)
			delivered = append(delivered, *rec)
		}
		c.o.Sessions.SendEncoded(s, "push", frame)
	}
	c.o.Metrics.Replayed.Add(float64(len(replay)))
}

// expectAnswer makes the session a recipient allowed to answer the push, before the push is
// queued (its answer cannot overtake it).
func (c *Consumer) expectAnswer(s *session.Session, d *pb.Downlink, partition int, offset int64, now time.Time) {
	if n := s.ExpectAnswer(answerable(d, partition, offset), c.o.PendingAnswers, now.UnixMilli()); n > 0 {
		c.o.Metrics.AnswersForgotten.Add(float64(n))
	}
}

// Targets resolves a record's target to the sessions held here (none when they are elsewhere).
func Targets(m *session.Manager, t *pb.Target) []*session.Session {
	switch k := t.Kind.(type) {
	case *pb.Target_UserId:
		return m.User(nil, k.UserId)
	case *pb.Target_Session:
		if s, ok := m.Get(session.Key{UserID: k.Session.GetUserId(), SessionID: k.Session.GetSessionId()}); ok {
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
