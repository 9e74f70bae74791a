package downlink_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/downlink"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// A push that asked for an ack and was delivered to a client that never answers — because it
// ignores it, or because it went away and never came back — ends in an EXPIRED receipt, so
// the publisher learns it will not be answered instead of waiting out its own timeout.
func TestUnansweredPushesExpire(t *testing.T) {
	c := newCluster(t, 1, 1)
	c.waitReady()
	c.connect(0, "mute", nil, nil)
	gone, goneBox := c.connect(0, "gone", nil, nil)
	c.connect(0, "polite", nil, func(cl *client.Client, p *client.Push) { _ = cl.Ack(context.Background(), p) })
	p := c.publisher()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := p.PushAndWaitAck(ctx, push.Message{Target: push.User("mute"), Payload: []byte("x"), TTL: time.Second}); !errors.Is(err, push.ErrExpired) {
		t.Fatalf("unanswered push: %v, want ErrExpired", err)
	}

	result := make(chan error, 1)
	go func() {
		_, err := p.PushAndWaitAck(ctx, push.Message{Target: push.User("gone"), Payload: []byte("y"), TTL: 2 * time.Second})
		result <- err
	}()
	goneBox.waitFor(t, 1)
	_ = gone.Close() // and never reconnects
	if err := <-result; !errors.Is(err, push.ErrExpired) {
		t.Fatalf("push to a client that left: %v, want ErrExpired", err)
	}

	r, err := p.PushAndWaitAck(ctx, push.Message{Target: push.User("polite"), Payload: []byte("z"), TTL: time.Second})
	if err != nil || r.Kind != pb.Receipt_KIND_ACKED {
		t.Fatalf("acked push: %v %v", r, err)
	}
	// A later push expiring proves the expiry pass has run past the acked push's expiry:
	// the ack cleared it, so it did not expire.
	if _, err := p.PushAndWaitAck(ctx, push.Message{Target: push.User("mute"), Payload: []byte("marker"), TTL: 1500 * time.Millisecond}); !errors.Is(err, push.ErrExpired) {
		t.Fatalf("marker: %v", err)
	}
	// The marker's answer reached the publisher through its own reader; the writer's
	// completion (tcpgw_receipts_total) and the tracker reading its EXPIRED back, which ends
	// the entry's count in tcpgw_pending_acks, are two more moments, in either order.
	expired := func() float64 {
		return metric(t, c.gws[0], "tcpgw_receipts_total", map[string]string{"kind": "KIND_EXPIRED"})
	}
	eventually(t, "the EXPIRED receipts written and read back by the tracker", func() bool {
		return expired() >= 3 && metric(t, c.gws[0], "tcpgw_pending_acks", nil) == 0
	})
	if n := expired(); n != 3 {
		t.Errorf("%v EXPIRED receipts, want 3 (mute, gone, marker; the acked push must not expire)", n)
	}
}

// The pod that delivered a push and owned its receipts partition is shut down before the
// push expires, and its client never comes back: the pod that takes the partition over (the
// expiry group's rebalance) writes the EXPIRED receipt, once.
func TestExpiryOutlivesTheDeliveringPod(t *testing.T) {
	c := newCluster(t, 2, 1)
	c.waitReady()
	owner := c.expiryOwner(0)
	heir := 1 - owner
	_, box := c.connect(owner, "mute", nil, nil)
	p := c.publisher()

	const ttl = 4 * time.Second
	id := "never-answered"
	result := make(chan error, 1)
	var expired *pb.Receipt
	go func() {
		r, err := p.PushAndWaitAck(ctxT(t), push.Message{ID: id, Target: push.User("mute"), Payload: []byte("x"), TTL: ttl})
		expired = r
		result <- err
	}()
	box.waitFor(t, 1)
	expires := time.UnixMilli(box.snapshot()[0].ExpiresAtMs)
	eventually(t, "the owner to track the delivery", func() bool {
		return metric(t, c.gws[owner], "tcpgw_pending_acks", nil) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.gws[owner].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if time.Now().After(expires) {
		t.Fatalf("the owner's shutdown ended %v after the push expired: too slow to test the hand-over", time.Since(expires))
	}

	if err := <-result; !errors.Is(err, push.ErrExpired) {
		t.Fatalf("push to a client that left with its pod: %v, want ErrExpired", err)
	}
	if want := fmt.Sprintf("gw-%d", heir); expired.ServerId != want || expired.UserId != "mute" || expired.ExpiresAtMs != expires.UnixMilli() {
		t.Errorf("EXPIRED receipt %v, want written by %s for user mute with the push's expiry", expired, want)
	}
	// The heir read its own EXPIRED back (nothing left open), so it will not write another.
	eventually(t, "the heir to read its EXPIRED back", func() bool {
		return metric(t, c.gws[heir], "tcpgw_pending_acks", nil) == 0
	})
	if n := metric(t, c.gws[owner], "tcpgw_expiry_receipts_written_total", nil); n != 0 {
		t.Errorf("the shut-down owner wrote %v EXPIRED", n)
	}
	if n := metric(t, c.gws[heir], "tcpgw_expiry_receipts_written_total", nil); n != 1 {
		t.Errorf("the heir wrote %v EXPIRED, want 1", n)
	}
	kinds := receiptKinds(t, c.bootstrap, c.receipts, id)
	if !slices.Equal(kinds, []pb.Receipt_Kind{pb.Receipt_KIND_DELIVERED, pb.Receipt_KIND_EXPIRED}) {
		t.Errorf("receipts for the push: %v, want one DELIVERED and one EXPIRED", kinds)
	}
}

// expiryOwner waits until the expiry group is stable with every gateway of the cluster a
// member, and returns the index of the gateway that owns the receipts partition.
func (c *cluster) expiryOwner(partition int) int {
	c.t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(c.bootstrap), Timeout: 5 * time.Second}
	owner := -1
	eventually(c.t, "a stable expiry group with every gateway in it", func() bool {
		res, err := client.DescribeGroups(ctxT(c.t), &kafka.DescribeGroupsRequest{GroupIDs: []string{downlink.ExpiryGroup(c.receipts)}})
		if err != nil || len(res.Groups) != 1 || res.Groups[0].GroupState != "Stable" || len(res.Groups[0].Members) != len(c.gws) {
			return false
		}
		owner = -1
		for _, m := range res.Groups[0].Members {
			for _, tp := range m.MemberAssignments.Topics {
				if tp.Topic == c.receipts && slices.Contains(tp.Partitions, partition) {
					_, _ = fmt.Sscanf(m.ClientID, "gw-%d", &owner)
				}
			}
		}
		// The member knows it too (its partition goroutine runs).
		return owner >= 0 && metric(c.t, c.gws[owner], "tcpgw_expiry_partitions_owned", nil) >= 1
	})
	return owner
}

// receiptKinds reads the whole receipts topic and returns the kinds of the receipts of one
// message, in order.
func receiptKinds(t *testing.T, bootstrap, topic, messageID string) []pb.Receipt_Kind {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(bootstrap), Timeout: 5 * time.Second}
	md, err := client.Metadata(ctxT(t), &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	var kinds []pb.Receipt_Kind
	for _, part := range md.Topics[0].Partitions {
		res, err := client.ListOffsets(ctxT(t), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(part.ID)}}})
		if err != nil {
			t.Fatal(err)
		}
		end := res.Topics[topic][0].LastOffset
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap}, Topic: topic, Partition: part.ID, MaxWait: 500 * time.Millisecond})
		for off := int64(0); off < end; off++ {
			m, err := r.ReadMessage(ctxT(t))
			if err != nil {
				t.Fatalf("reading %s/%d: %v", topic, part.ID, err)
			}
			var rc pb.Receipt
			if proto.Unmarshal(m.Value, &rc) == nil && rc.MessageId == messageID {
				kinds = append(kinds, rc.Kind)
			}
			off = m.Offset
		}
		_ = r.Close()
	}
	return kinds
}

// A push that waits for an ack and reached its client only as a replay after a resume (it
// was published while the client was away) gets its DELIVERED from the replaying pod, and so
// an EXPIRED when the client does not answer.
func TestReplayedPushesExpireToo(t *testing.T) {
	c := newCluster(t, 1, 1)
	c.waitReady()
	var to atomic.Value
	to.Store(c.gws[0].ClientAddr())
	box := &inbox{signal: make(chan struct{}, 1)}
	acks := make(chan *pb.HandshakeAck, 4)
	c.movingClient("bob", &to, box, acks)
	<-acks
	p := c.publisher()
	// The partition is empty: bob's resume floor is its watermark -1, and the push below is
	// the record at offset 0, which the resume must still replay.
	to.Store("127.0.0.1:1") // reconnects fail for now
	for _, s := range c.gws[0].Server().Sessions().All(nil) {
		s.Abort("test_cut")
	}
	eventually(t, "the session to go", func() bool { return c.gws[0].Server().Sessions().Len() == 0 })
	id := "replayed"
	result := make(chan error, 1)
	go func() {
		// The TTL leaves room for bob's reconnect on a loaded machine: a push replayed after
		// its expiry is not replayed at all.
		_, err := p.PushAndWaitAck(ctxT(t), push.Message{ID: id, Target: push.User("bob"), Payload: []byte("x"), TTL: 8 * time.Second})
		result <- err
	}()
	eventually(t, "the pod to read the push while bob is away", func() bool {
		return metric(t, c.gws[0], "tcpgw_downlink_records_total", map[string]string{"result": "skipped"}) >= 1
	})
	to.Store(c.gws[0].ClientAddr())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("resumes %v, replayed %v",
				metric(t, c.gws[0], "tcpgw_resumes_total", nil),
				metric(t, c.gws[0], "tcpgw_downlink_replayed_total", nil))
		}
	})
	if got := box.waitFor(t, 1); got[0].MessageId != id || got[0].Position.GetOffset() != 0 {
		t.Fatalf("bob got %v, want the push at offset 0", got[0])
	}
	if err := <-result; !errors.Is(err, push.ErrExpired) {
		t.Fatalf("unanswered replayed push: %v, want ErrExpired", err)
	}
	if n := metric(t, c.gws[0], "tcpgw_downlink_replayed_total", nil); n != 1 {
		t.Errorf("%v pushes replayed, want 1", n)
	}
	if kinds := receiptKinds(t, c.bootstrap, c.receipts, id); !slices.Equal(kinds, []pb.Receipt_Kind{pb.Receipt_KIND_DELIVERED, pb.Receipt_KIND_EXPIRED}) {
		t.Errorf("receipts %v, want DELIVERED (the replay) then EXPIRED", kinds)
	}
}
