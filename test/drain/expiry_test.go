package drain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/downlink"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// expirySlack bounds, beyond the push's expiry and the expiry group's hand-over (a heartbeat
// and a join after a drain, the session timeout after a kill), the time for the EXPIRED
// receipt to reach the publisher on a loaded 2-core box. It bounds, it does not synchronise.
const expirySlack = 5 * time.Second

// Item 4 of the issue: a client that never reconnects after its pod went away has its
// un-acked pushes reported to the publisher as EXPIRED receipts, exactly once, by the pod that
// took over the receipts partition the gone pod owned in the expiry group. Once through the
// preStop drain, once after a SIGKILL, on one fleet of three gateways.
func TestNeverReconnectingClientGetsExpiredReceipts(t *testing.T) {
	sc := currentScale(t)
	// The drain's pacing is TestPreStopDrain's business: short here, so that the pushes'
	// expiries (and the test) stay short.
	sc.drain = config.Drain{
		DeregistrationDelay: dur(200 * time.Millisecond),
		SpreadWindow:        dur(500 * time.Millisecond),
		FlushTimeout:        dur(time.Second),
		HardDeadline:        dur(5 * time.Second),
	}
	c := newCluster(t, sc, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	pub, err := push.New(ctx, push.Options{Brokers: []string{c.brokers}, Topic: c.topic, ReceiptsTopic: c.receipts})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })

	t.Run("drained through preStop", func(t *testing.T) {
		victim, survivors := c.gws[0], c.gws[1:]
		ec := c.startExpiryCase(t, pub, victim, survivors, 5*time.Second)
		t0 := time.Now()
		dr := victim.PreStop()
		if err := victim.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code, err := victim.WaitExit(victim.Config.Drain.TerminationGracePeriod()); err != nil || code != 0 {
			t.Fatalf("drained gateway: exit %d, %v\n%s", code, err, victim.Log.Tail(20))
		}
		if !dr.OK() {
			t.Errorf("gateway drain -wait exited %d saying %q (%v)", dr.ExitCode, dr.Output, dr.Err)
		}
		if gone := time.Now(); gone.After(ec.expires) {
			t.Fatalf("the drain ended %v after the push expired: too slow to test the hand-over", gone.Sub(ec.expires))
		}
		r := ec.await(t, time.Until(ec.expires)+expirySlack)
		ec.check(t, r)
		t.Logf("FIGURES expiry after a drain: drain took %.2fs; EXPIRED written by %s %.2fs after the expiry",
			dr.At.Sub(t0).Seconds(), r.ServerId, time.UnixMilli(r.AtMs).Sub(ec.expires).Seconds())
	})

	t.Run("SIGKILLed", func(t *testing.T) {
		victim, survivors := c.gws[1], c.gws[2:]
		if victim.Exited() {
			t.Fatal("the second gateway is gone already")
		}
		ec := c.startExpiryCase(t, pub, victim, survivors, 3*time.Second)
		killed := time.Now()
		if err := victim.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if _, err := victim.WaitExit(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		if killed.After(ec.expires) {
			t.Fatalf("killed %v after the push expired: too slow to test the hand-over", killed.Sub(ec.expires))
		}
		// Nothing tells the group the member died but the silence: its partitions move after
		// the session timeout.
		r := ec.await(t, max(time.Until(killed.Add(downlink.DefaultExpirySessionTimeout)), time.Until(ec.expires))+expirySlack)
		ec.check(t, r)
		t.Logf("FIGURES expiry after a SIGKILL: EXPIRED written by %s %.2fs after the expiry, %.2fs after the kill (session timeout %s)",
			r.ServerId, time.UnixMilli(r.AtMs).Sub(ec.expires).Seconds(), time.UnixMilli(r.AtMs).Sub(killed).Seconds(), downlink.DefaultExpirySessionTimeout)
	})
}

// expiryCase is one push, asking for an ack, to a client of a gateway about to go away; the
// client never acks and never reconnects.
type expiryCase struct {
	c         *cluster
	victim    *gatewayProc
	survivors []*gatewayProc
	id        string
	expires   time.Time
	result    chan expiryResult
}

type expiryResult struct {
	r   *pb.Receipt
	err error
}

// startExpiryCase connects a silent client to victim and pushes to it a message whose
// receipts partition victim owns, then waits until victim tracks the delivery: the state
// that goes away with it.
func (c *cluster) startExpiryCase(t *testing.T, pub *push.Publisher, victim *gatewayProc, survivors []*gatewayProc, ttl time.Duration) *expiryCase {
	t.Helper()
	owned := c.expiryPartitions(t, victim, 1+len(survivors))
	id := messageIn(victim.ID+"-push", owned)
	user := "silent-on-" + victim.ID

	got := make(chan *client.Push, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.Connect(ctx, client.Options{
		Addr: victim.ClientAddr, Token: c.token(user, nil), ClientVersion: "drain-test",
		NoReconnect: true, // never comes back
		OnPush: func(p *client.Push) {
			select {
			case got <- p:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	wait.For(t, 10*time.Second, "the session to register on "+victim.ID, func() bool {
		st, err := victim.Status()
		return err == nil && st.Sessions >= 1
	})

	ec := &expiryCase{c: c, victim: victim, survivors: survivors, id: id, result: make(chan expiryResult, 1)}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := pub.PushAndWaitAck(ctx, push.Message{ID: id, Target: push.User(user), Payload: []byte("ack me"), TTL: ttl})
		ec.result <- expiryResult{r, err}
	}()
	select {
	case p := <-got:
		ec.expires = time.UnixMilli(p.ExpiresAtMs)
	case <-time.After(10 * time.Second):
		t.Fatalf("the push did not reach the client on %s", victim.ID)
	}
	wait.For(t, time.Until(ec.expires), victim.ID+" to track the delivery", func() bool {
		n, err := victim.Metric("tcpgw_pending_acks")
		return err == nil && n == 1
	})
	return ec
}

// await waits for the publisher's answer.
func (ec *expiryCase) await(t *testing.T, limit time.Duration) *pb.Receipt {
	t.Helper()
	select {
	case res := <-ec.result:
		if !errors.Is(res.err, push.ErrExpired) {
			t.Fatalf("the publisher got %v (%v), want an EXPIRED receipt", res.r, res.err)
		}
		return res.r
	case <-time.After(limit):
		t.Fatalf("no EXPIRED receipt %v after the push expired", time.Since(ec.expires))
		return nil
	}
}

// check: a survivor wrote the EXPIRED, and the receipts topic holds exactly one DELIVERED
// and one EXPIRED for the push once the survivor has read its own EXPIRED back (after that it
// holds no open delivery and cannot write another).
func (ec *expiryCase) check(t *testing.T, r *pb.Receipt) {
	t.Helper()
	var writer *gatewayProc
	for _, g := range ec.survivors {
		if g.ID == r.ServerId {
			writer = g
		}
	}
	if writer == nil {
		t.Fatalf("EXPIRED written by %q, want one of the surviving gateways", r.ServerId)
	}
	if r.SessionId == "" || r.ExpiresAtMs != ec.expires.UnixMilli() || r.Position == nil {
		t.Errorf("EXPIRED receipt %v: want the session, the push's expiry and its position", r)
	}
	wait.For(t, 10*time.Second, r.ServerId+" to read its EXPIRED back", func() bool {
		n, err := writer.Metric("tcpgw_pending_acks")
		return err == nil && n == 0
	})
	kinds := receiptKinds(t, ec.c.brokers, ec.c.receipts, ec.id)
	if !slices.Equal(kinds, []pb.Receipt_Kind{pb.Receipt_KIND_DELIVERED, pb.Receipt_KIND_EXPIRED}) {
		t.Errorf("receipts of the push: %v, want one DELIVERED then one EXPIRED", kinds)
	}
}

// expiryPartitions waits until the expiry group is stable with members gateways and returns
// the receipts partitions g owns.
func (c *cluster) expiryPartitions(t *testing.T, g *gatewayProc, members int) []int {
	t.Helper()
	kc := &kafka.Client{Addr: kafka.TCP(c.brokers), Timeout: 5 * time.Second}
	var owned []int
	wait.For(t, 20*time.Second, "a stable expiry group of "+strconv.Itoa(members), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := kc.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{downlink.ExpiryGroup(c.receipts)}})
		if err != nil || len(res.Groups) != 1 || res.Groups[0].GroupState != "Stable" || len(res.Groups[0].Members) != members {
			return false
		}
		owned = nil
		for _, m := range res.Groups[0].Members {
			for _, tp := range m.MemberAssignments.Topics {
				if m.ClientID == g.ID && tp.Topic == c.receipts {
					owned = append(owned, tp.Partitions...)
				}
			}
		}
		if len(owned) == 0 {
			return false
		}
		n, err := g.Metric("tcpgw_expiry_partitions_owned")
		return err == nil && int(n) == len(owned)
	})
	return owned
}

// messageIn returns a message id whose receipts (keyed by message id, murmur2 like the
// gateway's writer) land in one of the partitions.
func messageIn(prefix string, owned []int) string {
	all := make([]int, partitions)
	for i := range all {
		all[i] = i
	}
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if slices.Contains(owned, (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(id)}, all...)) {
			return id
		}
	}
}

// receiptKinds reads the whole receipts topic and returns the kinds of one message's
// receipts, in order.
func receiptKinds(t *testing.T, brokers, topic, messageID string) []pb.Receipt_Kind {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kc := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 5 * time.Second}
	var kinds []pb.Receipt_Kind
	for p := range partitions {
		res, err := kc.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(p)}}})
		if err != nil {
			t.Fatal(err)
		}
		end := res.Topics[topic][0].LastOffset
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, Topic: topic, Partition: p, MaxWait: 500 * time.Millisecond})
		for next := int64(0); next < end; {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("reading %s/%d: %v", topic, p, err)
			}
			var rc pb.Receipt
			if proto.Unmarshal(m.Value, &rc) == nil && rc.MessageId == messageID {
				kinds = append(kinds, rc.Kind)
			}
			next = m.Offset + 1
		}
		_ = r.Close()
	}
	return kinds
}
