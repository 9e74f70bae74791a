package hostile

import (
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/test/kafkatest"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// Finding 6: a gateway started before its topics exist made the expiry consumer group rejoin
// in a tight loop (~225 generations per second, 27% CPU, ~150 KB/s of INFO logs) while
// /readyz blamed Kafka (kafka_unreachable) though the broker answered. It must say
// topics_missing, rejoin with a bounded backoff, keep its logs quiet, and become ready once
// the topics exist.
func TestTopicsMissingBackOff(t *testing.T) {
	g := Start(t, Options{Kafka: true, NoTopics: true, NoWaitReady: true})

	// The broker answers and the gateway tries to use the topics: it is not ready, and says
	// why.
	wait.For(t, 30*time.Second, "the gateway to find its topics missing (readiness failing, the expiry group trying)", func() bool {
		r, err := g.Readyz()
		return err == nil && r != "" && g.Metric("tcpgw_expiry_generations_total") > 0
	})
	if r, _ := g.Readyz(); !strings.Contains(r, "topics_missing") || strings.Contains(r, "kafka_unreachable") {
		t.Errorf("/readyz says %q, want topics_missing: the broker answers, only the topics are missing", r)
	}

	// Over a window of at least 5 s, the expiry group may try a handful of generations (the
	// backoff starts at 1 s and doubles), not hundreds; the gateway's log stays short. The
	// bounds hold however slow the machine is: a slower machine tries less often.
	const window = 5 * time.Second
	logLines := g.Log.Tap(func(string) bool { return true })
	gen0 := g.Metric("tcpgw_expiry_generations_total")
	start := time.Now()
	time.Sleep(window) // measuring a rate over a window: there is no event to wait for
	gens := g.Metric("tcpgw_expiry_generations_total") - gen0
	elapsed := time.Since(start)
	if gens > 8 {
		t.Errorf("the expiry group joined %v generations in %s while its topic is missing, want <= 8 (backing off)", gens, elapsed.Round(time.Millisecond))
	}
	if n := logLines.Count(); n > 10 {
		t.Errorf("%d log lines in %s while the topics are missing, want <= 10; the last ones:\n%s", n, elapsed.Round(time.Millisecond), g.Log.Tail(10))
	}

	// The operator (here: the test) creates the topics; the gateway becomes ready and the
	// expiry group takes the receipts partitions, without a restart.
	kafkatest.CreateNamedTopic(t, g.Brokers, g.Topic, 3)
	kafkatest.CreateNamedTopic(t, g.Brokers, g.Receipts, 3)
	if err := g.WaitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 60*time.Second, "the expiry group to own the 3 receipts partitions", func() bool {
		return g.Metric("tcpgw_expiry_partitions_owned") == 3
	})
}
