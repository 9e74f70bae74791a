package downlink

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
	poll "github.com/tcpgateway/tcpgateway/test/wait"
)

// lockedBuffer is a log sink Run's goroutine writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDownlinkTopicDeletedWhileRunning: the downlink topic deleted under a running consumer is
// the state of a topic missing at start, whichever probe sees it first: readiness says
// topics_missing, tcpgw_kafka_up stays 1 (Kafka answers), no Kafka error is counted and the log
// does not say Kafka failed; recreating the topic makes it ready again. The test runs the
// probes (poll) itself, the first one right after the deletion: kafka-go answers the metadata
// probe from its cache (refreshed every 6 s), so that probe still sees the topic and the
// partition-offsets probe, which asks the leader, is the one that finds it gone.
func TestDownlinkTopicDeletedWhileRunning(t *testing.T) {
	const timeout = 30 * time.Second
	bootstrap := kafkatest.Bootstrap(t)
	topic := kafkatest.CreateTopic(t, bootstrap, 1)
	var logs lockedBuffer
	m := metrics.NewDownlink(prometheus.NewRegistry())
	c, err := New(Options{Brokers: []string{bootstrap}, Topic: topic, ServerID: "gw-0", Sessions: noSessions{}, Metrics: m,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.shutdown() })
	poll.For(t, timeout, "readiness before the deletion", func() bool { c.poll(ctx); return c.Ready() == "" })

	admin := &kafka.Client{Addr: kafka.TCP(bootstrap), Timeout: 10 * time.Second}
	res, err := admin.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Fatalf("DeleteTopics: %v", err)
	}

	// The first probe after the deletion, then until the metadata probe sees it too: the
	// same state throughout.
	check := func(when string) {
		t.Helper()
		if r := c.Ready(); r != kafkasec.ReasonTopicsMissing {
			t.Fatalf("%s: Ready() = %q, want topics_missing", when, r)
		}
		if up := testutil.ToFloat64(m.KafkaUp); up != 1 {
			t.Errorf("%s: tcpgw_kafka_up = %v, want 1: Kafka answered", when, up)
		}
		if n := testutil.ToFloat64(m.TopicsMissing); n != 1 {
			t.Errorf("%s: tcpgw_kafka_topics_missing = %v, want 1", when, n)
		}
		if n := testutil.ToFloat64(m.KafkaErrors.WithLabelValues(kafkasec.ReasonTopicsMissing)); n != 0 {
			t.Errorf("%s: tcpgw_kafka_errors_total{reason=topics_missing} = %v, want 0: Kafka answered", when, n)
		}
	}
	c.poll(ctx)
	check("the first probe after the deletion")
	poll.For(t, timeout, "the metadata probe to see the topic gone", func() bool {
		missing, err := missingTopics(ctx, c.client, topic)
		return err == nil && len(missing) == 1
	})
	c.poll(ctx)
	check("once the metadata probe sees the topic gone")
	if l := logs.String(); strings.Contains(l, `"msg":"kafka topics missing",`) ||
		strings.Count(l, `"msg":"kafka topics missing; not ready until they exist"`) != 1 {
		t.Errorf("want one line, that of topics missing at start:\n%s", l)
	}

	kafkatest.CreateNamedTopic(t, bootstrap, topic, 1)
	poll.For(t, timeout, "readiness after the topic is recreated", func() bool {
		c.poll(ctx)
		return c.Ready() == "" && testutil.ToFloat64(m.TopicsMissing) == 0 && testutil.ToFloat64(m.KafkaUp) == 1
	})
}
