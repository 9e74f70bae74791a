package kafkatest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

// newWriter returns the producer configuration the tests rely on:
//   - Balancer Hash: the partition is chosen from the key, so all records of one key land on
//     one partition, which is what gives per-key ordering in Kafka.
//   - RequiredAcks all: WriteMessages returns only once the broker has committed the records,
//     so a consumer started afterwards is guaranteed to see them.
//   - BatchTimeout 5ms: a synchronous WriteMessages otherwise waits up to the default 1 s for
//     a batch to fill; tests would spend their time idling.
func newWriter(bootstrap, topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(bootstrap),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
	}
}

// newGroupReader returns a consumer-group Reader. MaxWait matters with kafka-go (v0.4.51):
//   - the default 10 s makes Close and every rebalance wait for the in-flight long-poll
//     fetch, measured here at ~18 s per test instead of under 3 s;
//   - 100 ms is too short: kafka-go asks the broker to wait MaxWait*3/4 and gives the
//     answer only MaxWait/4 (25 ms) of slack, so on a busy 2-core machine fetches at the
//     end of a partition hit "i/o timeout" and are retried.
//
// 500 ms keeps both small. It does not delay delivery: the broker answers a fetch as soon
// as a record arrives (MinBytes 1).
func newGroupReader(t *testing.T, bootstrap, topic, group string, mod func(*kafka.ReaderConfig)) *kafka.Reader {
	cfg := kafka.ReaderConfig{
		Brokers:        []string{bootstrap},
		Topic:          topic,
		GroupID:        group,
		StartOffset:    kafka.FirstOffset, // a new group reads the topic from the start
		MaxWait:        500 * time.Millisecond,
		CommitInterval: 0, // CommitMessages commits synchronously
		ErrorLogger:    kafka.LoggerFunc(func(f string, a ...any) { t.Logf("kafka-go reader: "+f, a...) }),
	}
	if mod != nil {
		mod(&cfg)
	}
	return kafka.NewReader(cfg)
}

type record struct{ key, value string }

// TestBrokerProduceConsumeGroup is the smoke test of the test broker and of kafka-go
// against it: produce keyed records to a 3-partition topic, consume them all through a
// consumer group with explicit commits, check exactly-once arrival and per-key order, then
// check that the commits persisted (a new reader of the same group gets only new records).
func TestBrokerProduceConsumeGroup(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	topic := kafkatest.CreateTopic(t, bootstrap, 3)
	group := topic + "-group"

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	keys := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"}
	const perKey = 20
	var want []record
	for i := range perKey {
		for _, k := range keys {
			want = append(want, record{k, fmt.Sprintf("%s-%03d", k, i)})
		}
	}

	w := newWriter(bootstrap, topic)
	defer w.Close()
	// Several WriteMessages calls, so that the topic holds several batches per partition.
	for chunk := range slices.Chunk(want, 25) {
		msgs := make([]kafka.Message, len(chunk))
		for i, r := range chunk {
			msgs[i] = kafka.Message{Key: []byte(r.key), Value: []byte(r.value)}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	r1 := newGroupReader(t, bootstrap, topic, group, nil)
	closed := false
	defer func() {
		if !closed {
			r1.Close()
		}
	}()

	seen := map[record]int{}
	perKeyGot := map[string][]string{}
	partitionOf := map[string]map[int]bool{}
	for range len(want) {
		m, err := r1.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch after %d of %d records: %v", len(seen), len(want), err)
		}
		rec := record{string(m.Key), string(m.Value)}
		seen[rec]++
		perKeyGot[rec.key] = append(perKeyGot[rec.key], rec.value)
		if partitionOf[rec.key] == nil {
			partitionOf[rec.key] = map[int]bool{}
		}
		partitionOf[rec.key][m.Partition] = true
		if err := r1.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit %s/%d@%d: %v", m.Topic, m.Partition, m.Offset, err)
		}
	}

	for _, rec := range want {
		if n := seen[rec]; n != 1 {
			t.Errorf("record %v arrived %d times, want exactly once", rec, n)
		}
	}
	partitionsUsed := map[int]bool{}
	for _, k := range keys {
		var wantVals []string
		for _, rec := range want {
			if rec.key == k {
				wantVals = append(wantVals, rec.value)
			}
		}
		if !slices.Equal(perKeyGot[k], wantVals) {
			t.Errorf("key %s: values arrived in order %v, want %v", k, perKeyGot[k], wantVals)
		}
		if len(partitionOf[k]) != 1 {
			t.Errorf("key %s spread over partitions %v, want exactly one (Hash balancer)", k, partitionOf[k])
		}
		for p := range partitionOf[k] {
			partitionsUsed[p] = true
		}
	}
	if len(partitionsUsed) < 2 {
		t.Errorf("all keys hashed to partitions %v; the test needs keys on several partitions", partitionsUsed)
	}
	if t.Failed() {
		return
	}

	// The group's committed offsets must be at the end of every partition.
	client := &kafka.Client{Addr: kafka.TCP(bootstrap), Timeout: 10 * time.Second}
	assertCommittedAtEnd(ctx, t, client, topic, group, 3)

	// Close leaves the group; a new member of the same group must resume after the commits.
	if err := r1.Close(); err != nil {
		t.Fatalf("close first reader: %v", err)
	}
	closed = true

	r2 := newGroupReader(t, bootstrap, topic, group, nil)
	defer r2.Close()
	fresh := record{"alpha", "alpha-after-commit"}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(fresh.key), Value: []byte(fresh.value)}); err != nil {
		t.Fatalf("produce fresh record: %v", err)
	}
	m, err := r2.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("second reader: fetch: %v", err)
	}
	if got := (record{string(m.Key), string(m.Value)}); got != fresh {
		t.Fatalf("second reader got %v first, want only the new record %v (commits not persisted?)", got, fresh)
	}
	if err := r2.CommitMessages(ctx, m); err != nil {
		t.Fatalf("second reader: commit: %v", err)
	}
	// Nothing else may follow: every older record was committed by the first reader. There
	// is no event for "nothing arrives", so give the reader a bounded window to prove it.
	quiet, cancelQuiet := context.WithTimeout(ctx, 2*time.Second)
	defer cancelQuiet()
	if m, err := r2.FetchMessage(quiet); err == nil {
		t.Fatalf("second reader got an already committed record %s=%s (partition %d offset %d)",
			m.Key, m.Value, m.Partition, m.Offset)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second reader: fetch while expecting nothing: %v", err)
	}
}

// assertCommittedAtEnd checks that group's committed offset on each partition of topic
// equals the partition's end offset.
func assertCommittedAtEnd(ctx context.Context, t *testing.T, client *kafka.Client, topic, group string, partitions int) {
	t.Helper()
	ids := make([]int, partitions)
	reqs := make([]kafka.OffsetRequest, partitions)
	for i := range partitions {
		ids[i] = i
		reqs[i] = kafka.LastOffsetOf(i)
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}
	if committed.Error != nil {
		t.Fatalf("OffsetFetch: %v", committed.Error)
	}
	ends, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("ListOffsets: %v", err)
	}
	end := map[int]int64{}
	for _, p := range ends.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("ListOffsets partition %d: %v", p.Partition, p.Error)
		}
		end[p.Partition] = p.LastOffset
	}
	if len(committed.Topics[topic]) != partitions {
		t.Fatalf("OffsetFetch returned %d partitions, want %d", len(committed.Topics[topic]), partitions)
	}
	for _, p := range committed.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("OffsetFetch partition %d: %v", p.Partition, p.Error)
		}
		if p.CommittedOffset != end[p.Partition] {
			t.Errorf("partition %d: committed offset %d, end offset %d", p.Partition, p.CommittedOffset, end[p.Partition])
		}
	}
}

// TestReaderWatchPartitionChanges checks that a consumer-group Reader with
// WatchPartitionChanges picks up partitions added to its topic while it runs.
func TestReaderWatchPartitionChanges(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	topic := kafkatest.CreateTopic(t, bootstrap, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	r := newGroupReader(t, bootstrap, topic, topic+"-group", func(c *kafka.ReaderConfig) {
		c.WatchPartitionChanges = true
		c.PartitionWatchInterval = 250 * time.Millisecond
	})
	defer r.Close()

	w := newWriter(bootstrap, topic)
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("before")}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("fetch first record: %v", err)
	}
	if string(m.Value) != "before" {
		t.Fatalf("first record = %q, want %q", m.Value, "before")
	}
	if err := r.CommitMessages(ctx, m); err != nil {
		t.Fatalf("commit: %v", err)
	}

	client := &kafka.Client{Addr: kafka.TCP(bootstrap), Timeout: 10 * time.Second}
	resp, err := client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{
		Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 2}},
	})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		t.Fatalf("CreatePartitions: %v", err)
	}

	// Write straight to the new partition 1 through its leader, bypassing the Writer's
	// metadata cache. The leader may need a moment to appear: retry within the deadline.
	var conn *kafka.Conn
	for {
		conn, err = kafka.DialLeader(ctx, "tcp", bootstrap, topic, 1)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("dial leader of new partition 1: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	_, err = conn.WriteMessages(kafka.Message{Key: []byte("k2"), Value: []byte("after")})
	conn.Close()
	if err != nil {
		t.Fatalf("produce to new partition: %v", err)
	}

	m, err = r.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("reader did not pick up the new partition: %v", err)
	}
	if string(m.Value) != "after" || m.Partition != 1 {
		t.Fatalf("got %q from partition %d, want %q from partition 1", m.Value, m.Partition, "after")
	}
	if err := r.CommitMessages(ctx, m); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// TestTopicNamesAreLegalAndUnique: two topics created for the same (sub)test, whose name
// has characters Kafka forbids, get different, legal names.
func TestTopicNamesAreLegalAndUnique(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	t.Run("sub test/with spaces.and.dots", func(t *testing.T) {
		a := kafkatest.CreateTopic(t, bootstrap, 1)
		b := kafkatest.CreateTopic(t, bootstrap, 1)
		legal := regexp.MustCompile(`^[a-zA-Z0-9_-]{1,249}$`)
		for _, name := range []string{a, b} {
			if !legal.MatchString(name) {
				t.Errorf("topic name %q is not a legal Kafka topic name", name)
			}
		}
		if a == b {
			t.Errorf("two CreateTopic calls returned the same name %q", a)
		}
	})
}
