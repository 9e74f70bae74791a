package events

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

type nopTransport struct{}

func (nopTransport) Write([][]byte) error { return nil }
func (nopTransport) Close() error         { return nil }

func testSession(user, id string, connected time.Time) *session.Session {
	s := session.New(nopTransport{}, "192.0.2.7:40000", &session.Limits{QueueFrames: 1, QueueBytes: 1}, &session.Hooks{}, connected)
	s.Establish(session.Identity{UserID: user, SessionID: id, DeviceID: "dev", ClientVersion: "app/1"})
	return s
}

func newPublisher(t *testing.T, brokers []string, topic string, queue int, omit bool) (*Publisher, *metrics.Events) {
	t.Helper()
	m := metrics.NewEvents(prometheus.NewRegistry(), Kinds())
	p := New(Options{Brokers: brokers, Topic: topic, ServerID: "gw-0", QueueLength: queue, OmitRemoteAddress: omit, Metrics: m})
	return p, m
}

// TestPublishesInOrderPerUser writes a session's life and reads it back from a real topic:
// keyed by user, in order, numbered, with each kind's fields.
func TestPublishesInOrderPerUser(t *testing.T) {
	brokers := []string{kafkatest.Bootstrap(t)}
	topic := kafkatest.CreateTopic(t, brokers[0], 3)
	p, m := newPublisher(t, brokers, topic, 64, false)
	start := time.Now().Add(-1500 * time.Millisecond)
	a, b := testSession("alice", "s1", start), testSession("alice", "s1", start)
	p.Connected(a, 1, nil)
	p.Replaced(a, 1, 2)
	p.Connected(b, 2, &pb.ResumeResult{Status: pb.ResumeResult_STATUS_NOT_RECOVERED})
	p.Disconnected(a, 1, session.ReasonReplaced)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.Close(ctx)
	if got := testutil.ToFloat64(m.Published.WithLabelValues("connected")); got != 1 {
		t.Fatalf("published connected = %v, want 1", got)
	}

	var got []*pb.SessionEvent
	for part := range 3 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: part, MaxWait: 100 * time.Millisecond})
		end, err := lastOffset(ctx, brokers[0], topic, part)
		if err != nil {
			t.Fatal(err)
		}
		for range end {
			msg, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(msg.Key) != "alice" {
				t.Fatalf("key %q, want the user id", msg.Key)
			}
			ev := &pb.SessionEvent{}
			if err := proto.Unmarshal(msg.Value, ev); err != nil {
				t.Fatal(err)
			}
			got = append(got, ev)
		}
		r.Close()
	}
	want := []pb.SessionEvent_Kind{pb.SessionEvent_KIND_CONNECTED, pb.SessionEvent_KIND_REPLACED, pb.SessionEvent_KIND_RESUMED, pb.SessionEvent_KIND_DISCONNECTED}
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	c1 := ConnectionID("gw-0", p.Epoch(), 1)
	for i, ev := range got {
		if ev.Kind != want[i] || ev.Seq != uint64(i+1) || ev.ServerId != "gw-0" || ev.Epoch != p.Epoch() ||
			ev.UserId != "alice" || ev.SessionId != "s1" || ev.DeviceId != "dev" || ev.ClientVersion != "app/1" || ev.RemoteAddress != "192.0.2.7:40000" {
			t.Fatalf("event %d: %v", i, ev)
		}
	}
	if got[1].ConnectionId != c1 || got[1].ReplacedBy != ConnectionID("gw-0", p.Epoch(), 2) {
		t.Fatalf("REPLACED names %s replaced by %s", got[1].ConnectionId, got[1].ReplacedBy)
	}
	if got[2].ResumeStatus != pb.ResumeResult_STATUS_NOT_RECOVERED {
		t.Fatalf("RESUMED status %v", got[2].ResumeStatus)
	}
	if d := got[3]; d.CloseReason != "replaced" || d.DurationMs < 1500 || d.ConnectionId != c1 {
		t.Fatalf("DISCONNECTED %v", d)
	}
}

func lastOffset(ctx context.Context, broker, topic string, part int) (int64, error) {
	c := &kafka.Client{Addr: kafka.TCP(broker)}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(part)}}})
	if err != nil {
		return 0, err
	}
	return resp.Topics[topic][0].LastOffset, nil
}

// TestNeverBlocksWhenKafkaIsDown publishes to a broker address nobody answers on: every call
// returns at once, the queue's overflow is dropped as queue_full, and what was queued when
// Close gives up is counted too, so nothing goes unaccounted.
func TestNeverBlocksWhenKafkaIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	const queue, n = 8, 5000
	p, m := newPublisher(t, []string{dead}, "events", queue, true)
	s := testSession("bob", "s", time.Now())
	start := time.Now()
	for i := range n {
		p.Connected(s, uint64(i), nil)
	}
	// A call that waited for Kafka would take at least a dial timeout; 5000 of them run in
	// microseconds each when they do not.
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("%d publishes took %s with Kafka down", n, took)
	}
	// How many the writer took off the queue meanwhile (and failed to write) depends on how
	// fast refused dials fail: CI saw 849 of 5000. The queue must have overflowed, and every
	// event is accounted for below.
	full := testutil.ToFloat64(m.Dropped.WithLabelValues(metrics.EventQueueFull))
	if full < 1 {
		t.Fatalf("queue_full drops %v: %d publishes into a queue of %d never overflowed it", full, n, queue)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p.Close(ctx)
	p.Connected(s, 1, nil) // after Close: dropped as stopped, no panic on the closed queue
	total := full + testutil.ToFloat64(m.Dropped.WithLabelValues(metrics.EventWriteFailed)) +
		testutil.ToFloat64(m.Dropped.WithLabelValues(metrics.EventStopped))
	if published := testutil.ToFloat64(m.Published.WithLabelValues("connected")); published != 0 || total != n+1 {
		t.Fatalf("published %v, dropped %v in all; want 0 and %d", published, total, n+1)
	}
}
