package downlink_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

func TestUserPushReachesOnlyThePodHoldingTheSession(t *testing.T) {
	c := newCluster(t, 2, 3)
	c.waitReady()
	_, alice := c.connect(0, "alice", nil, nil)
	_, bob := c.connect(1, "bob", nil, nil)
	p := c.publisher()

	if _, err := p.Push(ctxT(t), push.Message{Target: push.User("alice"), Payload: []byte("for alice")}); err != nil {
		t.Fatal(err)
	}
	got := alice.waitFor(t, 1)
	if string(got[0].Payload) != "for alice" || got[0].Position == nil || got[0].MessageId == "" {
		t.Fatalf("alice got %v", got[0])
	}
	// gw-1 read the same record and skipped it: it holds no session of alice.
	eventually(t, "gw-1 to skip the record", func() bool {
		return metric(t, c.gws[1], "tcpgw_downlink_records_total", map[string]string{"result": "skipped"}) >= 1
	})
	if n := metric(t, c.gws[1], "tcpgw_downlink_deliveries_total", nil); n != 0 {
		t.Errorf("gw-1 delivered %v pushes", n)
	}
	if got := bob.snapshot(); len(got) != 0 {
		t.Errorf("bob received %v", got)
	}
}

func TestBroadcastAndGroupTargets(t *testing.T) {
	// One partition: records are totally ordered, so "the marker arrived" proves that
	// everything before it was handled.
	c := newCluster(t, 2, 1)
	c.waitReady()
	type member struct {
		box   *inbox
		group bool
	}
	var members []member
	for i := range 6 {
		var groups []string
		if i%2 == 0 {
			groups = []string{"beta"}
		}
		_, box := c.connect(i%2, fmt.Sprintf("user-%d", i), groups, nil)
		members = append(members, member{box, len(groups) > 0})
	}
	p := c.publisher()
	for _, m := range []push.Message{
		{Target: push.Group("beta"), Payload: []byte("beta only")},
		{Target: push.All(), Payload: []byte("everyone")},
	} {
		if _, err := p.Push(ctxT(t), m); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range members {
		want := []string{"everyone"}
		if m.group {
			want = []string{"beta only", "everyone"}
		}
		got := m.box.waitFor(t, len(want))
		if len(got) != len(want) {
			t.Fatalf("member %d got %d pushes, want %v", i, len(got), want)
		}
		for j := range want {
			if string(got[j].Payload) != want[j] {
				t.Errorf("member %d push %d = %q, want %q", i, j, got[j].Payload, want[j])
			}
		}
	}
}

func TestOrderPerUserUnderLoad(t *testing.T) {
	c := newCluster(t, 2, 3)
	c.waitReady()
	_, alice := c.connect(1, "alice", nil, nil)
	_, carol := c.connect(0, "carol", nil, nil)
	p := c.publisher()

	const n = 400
	errs := make(chan error, 2*n)
	for i := range n {
		for _, user := range []string{"alice", "carol"} {
			p.PushAsync(push.Message{Target: push.User(user), Payload: []byte(strconv.Itoa(i))}, func(_ string, err error) { errs <- err })
		}
	}
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// PushAsync runs concurrently, so Kafka's order (which the gateway must keep) is the
	// order of positions, not of i: check positions increase and every record arrived once.
	for name, box := range map[string]*inbox{"alice": alice, "carol": carol} {
		got := box.waitFor(t, n)
		seen := map[string]bool{}
		for j, push := range got {
			if j > 0 && (push.Position.Partition != got[0].Position.Partition || push.Position.Offset <= got[j-1].Position.Offset) {
				t.Fatalf("%s: push %d at %v after %v: out of partition order", name, j, push.Position, got[j-1].Position)
			}
			if seen[string(push.Payload)] {
				t.Fatalf("%s: %q delivered twice", name, push.Payload)
			}
			seen[string(push.Payload)] = true
		}
		if len(seen) != n {
			t.Fatalf("%s: %d distinct pushes, want %d", name, len(seen), n)
		}
	}
}

func TestAckReceiptAndRequestReply(t *testing.T) {
	c := newCluster(t, 2, 3)
	c.waitReady()
	c.connect(0, "alice", nil, func(cl *client.Client, p *client.Push) {
		if p.AckRequired {
			_ = cl.Ack(context.Background(), p)
		}
		if p.ReplyExpected {
			_ = cl.Reply(context.Background(), p, append([]byte("re: "), p.Payload...))
		}
	})
	c.connect(1, "mute", nil, nil) // receives but never answers
	p := c.publisher()

	r, err := p.PushAndWaitAck(ctxT(t), push.Message{Target: push.User("alice"), Payload: []byte("ack me")})
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != pb.Receipt_KIND_ACKED || r.UserId != "alice" || r.ServerId != "gw-0" || r.SessionId == "" {
		t.Errorf("receipt %v", r)
	}

	reply, err := p.Request(ctxT(t), push.Message{Target: push.User("alice"), Payload: []byte("question")})
	if err != nil || string(reply) != "re: question" {
		t.Fatalf("Request = %q, %v", reply, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := p.Request(ctx, push.Message{Target: push.User("mute"), Payload: []byte("anyone?")}); !errors.Is(err, push.ErrTimeout) {
		t.Fatalf("Request to a client that never replies = %v, want ErrTimeout", err)
	}
}

// Records from any producer (here kafka-go's plain Writer with hand-built protobuf, as a Java
// producer would send) are delivered; bad ones are counted and skipped without stopping the
// consumer; expired ones are not delivered and produce an EXPIRED receipt.
func TestPlainProducerBadRecordsAndExpiry(t *testing.T) {
	c := newCluster(t, 1, 1)
	c.waitReady()
	_, alice := c.connect(0, "alice", nil, nil)

	value := func(d *pb.Downlink) []byte {
		b, err := proto.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	toAlice := &pb.Target{Kind: &pb.Target_UserId{UserId: "alice"}}
	w := &kafka.Writer{Addr: kafka.TCP(c.bootstrap), Topic: c.topic, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	err := w.WriteMessages(ctxT(t),
		kafka.Message{Key: []byte("alice"), Value: []byte("not protobuf \xff\xff")},
		kafka.Message{Key: []byte("alice"), Value: value(&pb.Downlink{MessageId: "no-target", Payload: []byte("x")})},
		kafka.Message{Key: []byte("alice"), Value: value(&pb.Downlink{Target: toAlice, Payload: []byte("no id")})},
		kafka.Message{Key: []byte("alice"), Value: value(&pb.Downlink{MessageId: "old", Target: toAlice, AckRequired: true,
			ExpiresAtMs: time.Now().Add(-time.Minute).UnixMilli(), Payload: []byte("too late")})},
		kafka.Message{Key: []byte("alice"), Value: value(&pb.Downlink{MessageId: "plain-1", Target: toAlice, Payload: []byte("from a plain producer")})},
	)
	if err != nil {
		t.Fatal(err)
	}
	got := alice.waitFor(t, 1)
	if len(got) != 1 || got[0].MessageId != "plain-1" || string(got[0].Payload) != "from a plain producer" {
		t.Fatalf("alice got %v, want only plain-1", got)
	}
	for _, result := range []string{"undecodable", "missing_target", "missing_message_id", "expired"} {
		if n := metric(t, c.gws[0], "tcpgw_downlink_records_total", map[string]string{"result": result}); n != 1 {
			t.Errorf("records{%s} = %v, want 1", result, n)
		}
	}

	// The expired record asked for an ack: its publisher learns it expired.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{c.bootstrap}, Topic: c.receipts, Partition: 0, MaxWait: 500 * time.Millisecond})
	defer r.Close()
	for {
		m, err := r.ReadMessage(ctxT(t))
		if err != nil {
			t.Fatalf("no EXPIRED receipt: %v", err)
		}
		var rc pb.Receipt
		if proto.Unmarshal(m.Value, &rc) == nil && rc.MessageId == "old" {
			if rc.Kind != pb.Receipt_KIND_EXPIRED || rc.UserId != "alice" {
				t.Fatalf("receipt for the expired record: %v", &rc)
			}
			break
		}
	}
}

// A gateway whose brokers cannot be reached says so on /readyz and keeps serving uplink.
func TestUnreachableKafkaFailsReadinessWithAReason(t *testing.T) {
	c := newCluster(t, 0, 1)
	keyFile := t.TempDir() + "/k"
	if err := writeFile(keyFile, c.secret); err != nil {
		t.Fatal(err)
	}
	gw := c.startGateway("gw-lonely", keyFile, []string{"127.0.0.1:1"})
	eventually(t, "readiness to report kafka", func() bool { return gw.Ready() == "kafka_unreachable" })
	if up := metric(t, gw, "tcpgw_kafka_up", nil); up != 0 {
		t.Errorf("tcpgw_kafka_up = %v", up)
	}
}
