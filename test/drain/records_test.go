package drain

import (
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/test/traffic"
)

// checkEveryRecord is the subtest the drain, kill, restart and rebalance scenarios share:
// every record Kafka accepted reached every client it was for, once and in order. complete is
// what traffic.WaitComplete saw within settle. It returns the deliveries counted.
func checkEveryRecord(t *testing.T, f *traffic.Fleet, p *traffic.Producer, ps traffic.ProducerStats, complete bool, settle time.Duration, t0 time.Time) (deliveries int) {
	t.Helper()
	t.Run("every accepted record arrives once, in order", func(t *testing.T) {
		if !complete {
			t.Errorf("records still missing %s after the producer stopped", settle)
		}
		if ps.Accepted == 0 {
			t.Fatal("Kafka accepted no record")
		}
		deliveries = traffic.CheckRecords(t, f, p, t0)
	})
	return deliveries
}
