package controllers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

// uniqueName is a name no other test run uses, so tests can share one broker.
func uniqueName(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// closedAddr is a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// describeTopic reads a topic's partition count and retention.ms straight from the broker
// (0 partitions: the topic does not exist).
func describeTopic(t *testing.T, bootstrap, topic string) (partitions int, retentionMs string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(bootstrap), Transport: &kafka.Transport{Context: ctx}}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	for _, tp := range md.Topics {
		if tp.Name == topic && tp.Error == nil {
			partitions = len(tp.Partitions)
		}
	}
	if partitions == 0 {
		return 0, ""
	}
	resp, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"},
	}}})
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	for _, r := range resp.Resources {
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "retention.ms" {
				retentionMs = e.ConfigValue
			}
		}
	}
	return partitions, retentionMs
}

// KafkaTopics against a real broker: create, grow, never shrink, follow retention, delete.
func TestKafkaTopics(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Kafka broker")
	}
	bootstrap := kafkatest.Bootstrap(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	km := &KafkaTopics{}
	down, rcpt := uniqueName("kt-down"), uniqueName("kt-rcpt")
	t.Cleanup(func() {
		_ = km.Delete(context.Background(), KafkaCluster{Brokers: []string{bootstrap}}, []string{down, rcpt})
	})
	specs := func(partitions int, retention time.Duration) []TopicSpec {
		return []TopicSpec{
			{Name: down, Partitions: partitions, ReplicationFactor: 3, Retention: retention},
			{Name: rcpt, Partitions: partitions, ReplicationFactor: 3, Retention: retention},
		}
	}

	type want struct {
		partitions int
		retention  string
		created    bool
		grownFrom  int
		retUpdated bool
	}
	steps := []struct {
		name       string
		partitions int
		retention  time.Duration
		want       want
		capped     bool
	}{
		// The test broker is alone, so the replication factor of 3 is capped to 1.
		{"create", 3, time.Hour, want{3, "3600000", true, 0, false}, true},
		{"nothing to do", 3, time.Hour, want{3, "3600000", false, 0, false}, true},
		{"grow", 5, time.Hour, want{5, "3600000", false, 3, false}, true},
		{"never shrink", 2, time.Hour, want{5, "3600000", false, 0, false}, true},
		{"retention", 5, 2 * time.Hour, want{5, "7200000", false, 0, true}, true},
	}
	for _, s := range steps {
		res, err := km.Ensure(ctx, KafkaCluster{Brokers: []string{bootstrap}}, specs(s.partitions, s.retention))
		if err != nil {
			t.Fatalf("%s: Ensure: %v", s.name, err)
		}
		if res.Brokers != 1 || res.ReplicationCapped != s.capped {
			t.Errorf("%s: brokers %d, capped %v; want 1, %v", s.name, res.Brokers, res.ReplicationCapped, s.capped)
		}
		for i, name := range []string{down, rcpt} {
			st := res.Topics[i]
			got := want{st.Partitions, s.want.retention, st.Created, st.GrownFrom, st.RetentionUpdated}
			if got != s.want || st.Name != name {
				t.Errorf("%s: %s reported %+v, want %+v", s.name, name, got, s.want)
			}
			// Ensure waits for new partitions to show; a configuration change it does not
			// wait for (setting it again is harmless), so the broker may show it a bit later.
			eventually(t, 10*time.Second, func() error {
				if n, ret := describeTopic(t, bootstrap, name); n != s.want.partitions || ret != s.want.retention {
					return fmt.Errorf("%s: %s has %d partitions and retention.ms %s on the broker, want %d and %s",
						s.name, name, n, ret, s.want.partitions, s.want.retention)
				}
				return nil
			})
		}
	}

	if err := km.Delete(ctx, KafkaCluster{Brokers: []string{bootstrap}}, []string{down, rcpt}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// Deletion is asynchronous in Kafka too: poll the metadata, bounded.
	eventually(t, 30*time.Second, func() error {
		if n, _ := describeTopic(t, bootstrap, down); n != 0 {
			return errors.New("downlink topic still exists")
		}
		return nil
	})
	// Deleting what is gone is not an error.
	if err := km.Delete(ctx, KafkaCluster{Brokers: []string{bootstrap}}, []string{down}); err != nil {
		t.Errorf("Delete of a deleted topic: %v", err)
	}
}

// A closed port is ErrKafkaUnreachable, promptly.
func TestKafkaTopicsUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	km := &KafkaTopics{}
	_, err := km.Ensure(ctx, KafkaCluster{Brokers: []string{closedAddr(t)}}, []TopicSpec{{Name: "x", Partitions: 1, ReplicationFactor: 1}})
	if !errors.Is(err, ErrKafkaUnreachable) {
		t.Fatalf("Ensure = %v, want ErrKafkaUnreachable", err)
	}
	if err := km.Delete(ctx, KafkaCluster{Brokers: []string{closedAddr(t)}}, []string{"x"}); !errors.Is(err, ErrKafkaUnreachable) {
		t.Errorf("Delete = %v, want ErrKafkaUnreachable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s to notice a closed port", d)
	}
}

// eventually polls f until it returns nil, failing the test after timeout. For conditions
// nothing notifies us of (Kafka's asynchronous topic changes, the API server's view through
// the manager); the poll interval is short and the deadline bounded.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := 20 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", timeout, err)
		}
		time.Sleep(interval) // poll interval, not synchronisation: f decides
		interval = min(interval*2, 250*time.Millisecond)
	}
}

// A topic named twice (downlink and receipts coincide in an invalid spec) is created once.
func TestKafkaTopicsDuplicateName(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Kafka broker")
	}
	bootstrap := kafkatest.Bootstrap(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	km := &KafkaTopics{}
	name := uniqueName("kt-dup")
	t.Cleanup(func() {
		_ = km.Delete(context.Background(), KafkaCluster{Brokers: []string{bootstrap}}, []string{name, name})
	})
	spec := TopicSpec{Name: name, Partitions: 2, ReplicationFactor: 1}
	res, err := km.Ensure(ctx, KafkaCluster{Brokers: []string{bootstrap}}, []TopicSpec{spec, spec})
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if len(res.Topics) != 1 || !res.Topics[0].Created {
		t.Errorf("result %+v, want one created topic", res.Topics)
	}
	if _, err := km.Ensure(ctx, KafkaCluster{}, []TopicSpec{spec}); !errors.Is(err, ErrKafkaUnreachable) {
		t.Errorf("Ensure without brokers = %v, want ErrKafkaUnreachable", err)
	}
}
