package downlink

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

// heldBack is a consumer of topic whose reader is held back: it has read offsets 0 and 1 of
// partition 0 and, when it fetched them, the partition ended there (the state of a pod a
// client reaches right after another pod delivered it offset 2).
func heldBack(t *testing.T, brokers []string, topic string) *Consumer {
	t.Helper()
	c, err := New(Options{Brokers: brokers, Topic: topic, ServerID: "gw-1", Sessions: noSessions{},
		Metrics: metrics.NewDownlink(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.tr.CloseIdleConnections)
	alice := &pb.Target{Kind: &pb.Target_UserId{UserId: "alice"}}
	r := newRing(10, 0, 0)
	for off := range int64(2) {
		r.push(rec(0, off, time.Now(), alice))
		r.next = off + 1
	}
	r.learnEnd(2)
	c.win.parts[0] = r
	return c
}

// resume attaches a session of alice to c with positions and returns the resume result.
func resume(c *Consumer, positions ...*pb.Position) *pb.ResumeResult {
	s := &session.Session{}
	s.Identity = session.Identity{SessionID: "s", UserID: "alice"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var result *pb.ResumeResult
	c.Attach(ctx, s, &pb.Resume{Positions: positions}, func(_ []*pb.Position, r *pb.ResumeResult) { result = r })
	return result
}

// A client moves from a pod that has read offset 2 to one whose reader has not (the
// conformance scenario drain_resume_complete under load): offset 2 is a real record, so the
// resume is COMPLETE with nothing rejected; the reader delivers offsets 2.. after the ack and
// the client drops 2 by position. A position at or beyond the partition's real end (3) is
// still rejected.
func TestResumeAheadOfWhatThisPodReadIsNotRejected(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	topic := kafkatest.CreateTopic(t, bootstrap, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", bootstrap, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 3 {
		v, err := proto.Marshal(&pb.Downlink{MessageId: fmt.Sprint("m", i), Target: &pb.Target{Kind: &pb.Target_UserId{UserId: "alice"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteMessages(kafka.Message{Key: []byte("alice"), Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	c := heldBack(t, []string{bootstrap}, topic)

	if r := resume(c, &pb.Position{Partition: 0, Offset: 2}); r.GetStatus() != pb.ResumeResult_STATUS_COMPLETE || len(r.GetRejected()) != 0 {
		t.Fatalf("resume at offset 2 (written, not yet read here): %v, want COMPLETE with nothing rejected", r)
	}
	if r := resume(c, &pb.Position{Partition: 0, Offset: 1}); r.GetStatus() != pb.ResumeResult_STATUS_COMPLETE || len(r.GetRejected()) != 0 {
		t.Fatalf("resume at offset 1: %v", r)
	}
	for _, off := range []int64{3, 1 << 40} {
		want := []*pb.Position{{Partition: 0, Offset: off}}
		if r := resume(c, want[0]); !slices.EqualFunc(r.GetRejected(), want, func(a, b *pb.Position) bool { return proto.Equal(a, b) }) {
			t.Fatalf("resume at offset %d, beyond the end: %v, want it rejected", off, r)
		}
	}
}

// When Kafka does not answer, a position beyond what the pod has read is judged on what it
// knows: rejected (the client keeps its position), not taken on trust.
func TestResumeAheadWithoutKafkaIsRejected(t *testing.T) {
	c := heldBack(t, []string{"127.0.0.1:9"}, "no-such-topic")
	want := &pb.Position{Partition: 0, Offset: 2}
	if r := resume(c, want); len(r.GetRejected()) != 1 || !proto.Equal(r.GetRejected()[0], want) {
		t.Fatalf("resume at offset 2 with Kafka away: %v, want it rejected", r)
	}
}
