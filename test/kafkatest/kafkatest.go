// Package kafkatest gives tests a real Apache Kafka broker.
//
// The broker is the real thing (the official Kafka jars, single-node KRaft, on 127.0.0.1),
// run by the project's own script hack/kafka.sh, because the gateway's behaviour against
// Kafka — consumer groups, commits, rebalances, protocol versions — is exactly what a fake
// would get wrong.
//
// One broker serves a whole `make test` run: hack/test.sh starts it once and passes its
// address to every test binary in TCPGW_KAFKA_BOOTSTRAP, since starting a JVM broker costs
// seconds and memory on a 2-core machine. When that variable is absent (plain
// `go test ./...`), each test binary that asks for a broker starts its own through the same
// script, in a private state directory, and stops it when the binary ends.
//
// StartSecure gives the secured broker (TLS, SASL, an expired certificate, a second CA; see
// Secure) the same way, through TCPGW_KAFKA_SECURE_DIR. hack/test.sh starts a single broker
// in sasl_ssl mode and passes both: its plaintext listener is TCPGW_KAFKA_BOOTSTRAP.
//
// Because the broker is shared, tests never rely on broker-wide state: each test creates
// its own uniquely named topics with CreateTopic (and uses its own consumer group names),
// so tests in different packages can run against the same broker at the same time without
// seeing each other's records.
//
// Use it as:
//
//	func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		bootstrap := kafkatest.Bootstrap(t)
//		topic := kafkatest.CreateTopic(t, bootstrap, 3)
//		...
//	}
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/test/repo"
)

// EnvBootstrap names the environment variable that holds the bootstrap address
// (host:port) of an already running broker, set by the Makefile.
const EnvBootstrap = "TCPGW_KAFKA_BOOTSTRAP"

// startTimeout bounds `hack/kafka.sh start`: on a fresh machine it first fetches the jars
// from Maven Central, then waits up to 90 s for the broker to answer.
const startTimeout = 5 * time.Minute

// The broker this process started, if any.
var (
	startOnce sync.Once
	ownAddr   string
	ownErr    error
	ownState  string // KAFKA_STATE_DIR of our broker; "" when we started none
)

// Main runs the tests and then stops the broker that this test binary started (if it
// started one), so that no java process outlives `go test`. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }
//
// Should the binary die without reaching the end of Main (a panic, -timeout), the script
// still stops the broker: it watches this process (KAFKA_OWNER_PID) and stops the broker
// about a second after the process is gone.
func Main(m *testing.M) int {
	code := m.Run()
	for _, state := range []string{ownState, ownSecState} {
		if err := stopOwn(state, code != 0); err != nil {
			fmt.Fprintf(os.Stderr, "kafkatest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Bootstrap returns the bootstrap address (host:port) of the test broker. It is the value
// of TCPGW_KAFKA_BOOTSTRAP when set; otherwise the first call starts a broker for this test
// binary (later calls reuse it). It never skips: a test that needs Kafka and cannot have it
// fails, with the script's output in the failure message.
func Bootstrap(t testing.TB) string {
	t.Helper()
	if addr := strings.TrimSpace(os.Getenv(EnvBootstrap)); addr != "" {
		return addr
	}
	startOnce.Do(func() { ownAddr, ownErr = startOwn() })
	if ownErr != nil {
		t.Fatalf("kafkatest: no Kafka broker (%s unset, starting one failed): %v", EnvBootstrap, ownErr)
	}
	return ownAddr
}

// CreateTopic creates a topic with the given number of partitions (replication factor 1)
// and waits until the broker's metadata shows every partition with a leader, so that
// producers and consumers can use it at once. The name is derived from t.Name() plus a
// random suffix, so every call gets a topic of its own even on a shared broker and across
// repeated runs (-count=N). The topic is deleted when the test ends.
func CreateTopic(t testing.TB, bootstrap string, partitions int) string {
	t.Helper()
	return CreateNamedTopic(t, bootstrap, TopicName(t), partitions)
}

// TopicName is a unique topic name for the test, as CreateTopic chooses, for a topic that a
// test creates later (CreateNamedTopic) or never.
func TopicName(t testing.TB) string { return topicName(t.Name()) }

// CreateNamedTopic is CreateTopic with the name chosen by the caller (see TopicName).
func CreateNamedTopic(t testing.TB, bootstrap, name string, partitions int) string {
	t.Helper()
	if partitions < 1 {
		t.Fatalf("kafkatest.CreateTopic: partitions must be >= 1, got %d", partitions)
	}
	client := &kafka.Client{Addr: kafka.TCP(bootstrap), Timeout: 10 * time.Second}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: name, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err != nil {
		t.Fatalf("kafkatest: create topic %q on %s: %v", name, bootstrap, err)
	}
	if err := resp.Errors[name]; err != nil {
		t.Fatalf("kafkatest: create topic %q on %s: %v", name, bootstrap, err)
	}
	t.Cleanup(func() { deleteTopic(t, client, name) })

	// Creation is asynchronous in Kafka: CreateTopics returns once the controller accepted
	// it, before the broker has loaded the partitions. Nothing notifies us when that is
	// done, so poll the metadata until every partition has a leader.
	var last string
	for {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{name}})
		if err == nil {
			if last = topicNotReady(md, name, partitions); last == "" {
				return name
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kafkatest: topic %q not ready on %s: %s (%v)", name, bootstrap, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// topicNotReady returns "" when md shows topic with partitions partitions, all led, and
// otherwise why not.
func topicNotReady(md *kafka.MetadataResponse, topic string, partitions int) string {
	for _, tp := range md.Topics {
		if tp.Name != topic {
			continue
		}
		if tp.Error != nil {
			return tp.Error.Error()
		}
		if len(tp.Partitions) != partitions {
			return fmt.Sprintf("%d of %d partitions in metadata", len(tp.Partitions), partitions)
		}
		for _, p := range tp.Partitions {
			if p.Error != nil {
				return fmt.Sprintf("partition %d: %v", p.ID, p.Error)
			}
			if p.Leader.Host == "" || p.Leader.ID < 0 {
				return fmt.Sprintf("partition %d has no leader", p.ID)
			}
		}
		return ""
	}
	return "topic not in metadata"
}

// deleteTopic removes a test's topic so that a broker shared by a whole test run does not
// accumulate partitions. Failures are only logged: the topic name is unique anyway.
func deleteTopic(t testing.TB, client *kafka.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{name}})
	if err == nil {
		err = resp.Errors[name]
	}
	if err != nil {
		t.Logf("kafkatest: delete topic %q: %v", name, err)
	}
}

// topicName turns a test name into a legal, unique Kafka topic name: Kafka allows
// [a-zA-Z0-9._-] and at most 249 characters. Other characters (subtest slashes, spaces)
// become '-'; '.' is avoided as well since Kafka treats '.' and '_' as colliding in metric
// names.
func topicName(testName string) string {
	var b strings.Builder
	b.WriteString("test-")
	for _, r := range testName {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= 120 {
			break
		}
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:]) // crypto/rand.Read never fails
	b.WriteByte('-')
	b.WriteString(hex.EncodeToString(suffix[:]))
	return b.String()
}

// startOwn starts a broker for this process with hack/kafka.sh in a private state dir. The
// broker watches this process (KAFKA_OWNER_PID) and stops itself if the test binary dies.
func startOwn() (string, error) {
	dir, err := os.MkdirTemp("", "tcpgw-kafka-")
	if err != nil {
		return "", err
	}
	ownState = dir
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	addr, err := repo.Script(ctx, []string{"KAFKA_STATE_DIR=" + dir, "KAFKA_OWNER_PID=" + strconv.Itoa(os.Getpid())}, "kafka.sh", "start")
	if err != nil {
		return "", err
	}
	if addr == "" || strings.ContainsAny(addr, " \n") {
		return "", fmt.Errorf("hack/kafka.sh start printed %q, want host:port", addr)
	}
	return addr, nil
}

// stopOwn stops the broker started by startOwn or startOwnSecure in state, if any ("" when
// none), and removes its state dir (kept, with the broker log, when keepLogs is set so a
// failed run can be examined).
func stopOwn(ownState string, keepLogs bool) error {
	if ownState == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := repo.Script(ctx, []string{"KAFKA_STATE_DIR=" + ownState}, "kafka.sh", "stop"); err != nil {
		return fmt.Errorf("stopping the broker (state %s): %w", ownState, err)
	}
	if keepLogs {
		fmt.Fprintf(os.Stderr, "kafkatest: broker log kept in %s\n", filepath.Join(ownState, "kafka.log"))
		return nil
	}
	return os.RemoveAll(ownState)
}

// Broker is a broker of one test's own, for tests that take it down (others share one).
type Broker struct {
	Addr  string
	state string
}

// Private starts a broker for this test only; it is stopped when the test ends.
func Private(t testing.TB) *Broker {
	t.Helper()
	b := &Broker{state: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	addr, err := repo.Script(ctx, b.env(), "kafka.sh", "start")
	if err != nil {
		t.Fatalf("starting a private broker: %v", err)
	}
	b.Addr = addr
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := repo.Script(ctx, b.env(), "kafka.sh", "stop"); err != nil {
			t.Errorf("stopping the private broker: %v", err)
		}
	})
	return b
}

// Pause stops the broker, keeping its data and address, like a broker outage.
func (b *Broker) Pause(t testing.TB) {
	t.Helper()
	b.run(t, "pause")
}

// Resume brings the paused broker back on the same address with the same data.
func (b *Broker) Resume(t testing.TB) {
	t.Helper()
	b.run(t, "resume")
}

func (b *Broker) run(t testing.TB, cmd string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := repo.Script(ctx, b.env(), "kafka.sh", cmd); err != nil {
		t.Fatalf("kafka.sh %s: %v", cmd, err)
	}
}

func (b *Broker) env() []string {
	return []string{"KAFKA_STATE_DIR=" + b.state, "KAFKA_OWNER_PID=" + strconv.Itoa(os.Getpid())}
}
