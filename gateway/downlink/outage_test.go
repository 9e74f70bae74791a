package downlink_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

// The broker goes away mid-stream and comes back on the same address: readiness says so
// meanwhile, delivery resumes by itself, and every record Kafka accepted reaches the client
// once, in order.
func TestBrokerOutageMidStreamLosesNothing(t *testing.T) {
	broker := kafkatest.Private(t)
	c := &cluster{t: t, bootstrap: broker.Addr, secret: []byte("outage-test-secret-0123456789abcdef")}
	c.topic = kafkatest.CreateTopic(t, broker.Addr, 1)
	c.receipts = kafkatest.CreateTopic(t, broker.Addr, 1)
	keyFile := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(keyFile, c.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	c.gws = append(c.gws, c.startGateway("gw-0", keyFile, []string{broker.Addr}))
	c.waitReady()
	_, alice := c.connect(0, "alice", nil, nil)
	p := c.publisher()

	send := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := p.Push(ctxT(t), push.Message{Target: push.User("alice"), Payload: []byte(strconv.Itoa(i))}); err != nil {
				t.Fatalf("push %d: %v", i, err)
			}
		}
	}
	send(0, 20)
	alice.waitFor(t, 20)
	send(20, 30) // accepted by Kafka; maybe not yet delivered when the broker stops
	broker.Pause(t)
	eventually(t, "readiness to report the outage", func() bool { return c.gws[0].Ready() == "kafka_unreachable" })
	broker.Resume(t)
	eventually(t, "readiness after the outage", func() bool { return c.gws[0].Ready() == "" })
	send(30, 40)

	got := alice.waitFor(t, 40)
	for i, p := range got {
		if string(p.Payload) != strconv.Itoa(i) {
			t.Fatalf("push %d carried %q: lost, duplicated or reordered", i, p.Payload)
		}
	}
	if len(got) != 40 {
		t.Fatalf("%d pushes, want 40", len(got))
	}
}

// Partitions the operator adds later are read without a restart, from their first record.
func TestPartitionsAddedLaterAreRead(t *testing.T) {
	c := newCluster(t, 1, 1)
	c.waitReady()
	_, alice := c.connect(0, "alice", nil, nil)

	client := &kafka.Client{Addr: kafka.TCP(c.bootstrap), Timeout: 10 * time.Second}
	res, err := client.CreatePartitions(ctxT(t), &kafka.CreatePartitionsRequest{
		Topics: []kafka.TopicPartitionsConfig{{Name: c.topic, Count: 2}},
	})
	if err != nil || res.Errors[c.topic] != nil {
		t.Fatalf("CreatePartitions: %v %v", err, res.Errors)
	}
	value, err := proto.Marshal(&pb.Downlink{MessageId: "in-new-partition",
		Target: &pb.Target{Kind: &pb.Target_UserId{UserId: "alice"}}, Payload: []byte("new")})
	if err != nil {
		t.Fatal(err)
	}
	// Written straight to the new partition's leader: no balancer decides.
	var conn *kafka.Conn
	eventually(t, "the new partition's leader", func() bool {
		conn, err = kafka.DialLeader(ctxT(t), "tcp", c.bootstrap, c.topic, 1)
		return err == nil
	})
	defer conn.Close()
	if _, err := conn.WriteMessages(kafka.Message{Key: []byte("alice"), Value: value}); err != nil {
		t.Fatal(err)
	}
	got := alice.waitFor(t, 1)
	if got[0].MessageId != "in-new-partition" || got[0].Position.Partition != 1 {
		t.Fatalf("got %v", got[0])
	}
}
