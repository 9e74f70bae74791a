package downlink

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/session"
)

type noSessions struct{}

func (noSessions) Sessions() *session.Manager                                      { return nil }
func (noSessions) SendEncoded(*session.Session, string, []byte)                    {}
func (noSessions) QueueEncoded(*session.Session, string, []byte) bool              { return false }
func (noSessions) DeliverEncoded(*session.Session, string, []byte, *session.Tally) {}

// TestReadinessFollowsTheProbe: readiness says the reason of the last failed probe, the
// metric counts each failure by reason, and the log says what to fix once per change.
func TestReadinessFollowsTheProbe(t *testing.T) {
	var logs bytes.Buffer
	m := metrics.NewDownlink(prometheus.NewRegistry())
	c, err := New(Options{Brokers: []string{"127.0.0.1:9"}, Topic: "t", ServerID: "gw-0", Sessions: noSessions{}, Metrics: m,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Ready(); r != kafkasec.ReasonUnreachable {
		t.Fatalf("before the first probe Ready() = %q, want kafka_unreachable", r)
	}
	for _, r := range []string{kafkasec.ReasonAuthFailed, kafkasec.ReasonTLSFailed, kafkasec.ReasonUnreachable} {
		if got := testutil.ToFloat64(m.KafkaErrors.WithLabelValues(r)); got != 0 {
			t.Errorf("tcpgw_kafka_errors_total{reason=%q} starts at %v, want 0", r, got)
		}
	}

	auth := fmt.Errorf("kafka.(*Client).Metadata: %w", kafka.SASLAuthenticationFailed)
	c.probeFailed(auth)
	c.probeFailed(auth)
	if r := c.Ready(); r != kafkasec.ReasonAuthFailed {
		t.Fatalf("Ready() = %q after an authentication failure", r)
	}
	if got := testutil.ToFloat64(m.KafkaErrors.WithLabelValues(kafkasec.ReasonAuthFailed)); got != 2 {
		t.Errorf("tcpgw_kafka_errors_total{reason=kafka_auth_failed} = %v, want 2", got)
	}
	if n := strings.Count(logs.String(), `"reason":"kafka_auth_failed"`); n != 1 {
		t.Errorf("%d log lines for two failures with the same reason, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"fix":"check kafka.sasl`) {
		t.Errorf("the log does not say what to fix:\n%s", logs.String())
	}

	c.probeFailed(&kafkasec.TLSError{Addr: "b:9093", Err: errors.New("x509: certificate has expired")})
	if r := c.Ready(); r != kafkasec.ReasonTLSFailed {
		t.Fatalf("Ready() = %q after a TLS failure", r)
	}
	c.probeAnswered("topic", "t")
	if r := c.Ready(); r != "downlink_starting" {
		t.Fatalf("Ready() = %q once Kafka answers (no partition positioned yet), want downlink_starting", r)
	}
	if testutil.ToFloat64(m.KafkaUp) != 1 || !strings.Contains(logs.String(), `"msg":"kafka reachable"`) {
		t.Errorf("kafka_up = %v, logs:\n%s", testutil.ToFloat64(m.KafkaUp), logs.String())
	}
}
