//go:build bench

package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/test/gwproc"
)

// floorPartitions is the partitions of TestFloor's downlink topic.
const floorPartitions = 6

// floorCounters is one scrape of the gateway's write-merging counters (docs/metrics.md).
type floorCounters struct {
	writes, pushes, bytes, deliveries float64
	batches, batchRecords             float64
	// batchBuckets: cumulative batches by upper bound of records (tcpgw_downlink_batch_records).
	batchBuckets map[float64]float64
}

func scrapeFloor(admin string) (floorCounters, error) {
	ms, err := (&gwproc.Gateway{ID: "gateway", AdminAddr: admin}).Metrics()
	if err != nil {
		return floorCounters{}, err
	}
	c := floorCounters{
		writes:       ms.Value("tcpgw_socket_writes_total"),
		pushes:       ms.Value("tcpgw_frames_total", "kind", "push", "direction", "out"),
		bytes:        ms.Value("tcpgw_bytes_total", "direction", "out"),
		deliveries:   ms.Value("tcpgw_downlink_deliveries_total"),
		batchBuckets: map[float64]float64{},
	}
	if fam, ok := ms["tcpgw_downlink_batch_records"]; ok {
		for _, m := range fam.GetMetric() {
			h := m.GetHistogram()
			c.batches += float64(h.GetSampleCount())
			c.batchRecords += h.GetSampleSum()
			for _, b := range h.GetBucket() {
				c.batchBuckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			}
		}
	}
	return c, nil
}

// burstMechanism is how the gateway merged the writes of one burst: the difference of two
// scrapes around it, and how the publisher's records fell on the partitions.
type burstMechanism struct {
	framesPerWrite, writesPerDelivery float64
	batches                           float64
	split                             []int
	toFirst                           time.Duration // the call → the first receipt
	line                              string
}

// scrapeAfter scrapes the gateway once the deliverers reported the burst's writes: they count
// them when a batch ends (session.Tally), just after its last write, so the receivers may see
// the last frame a moment before; it waits (≤ 2 s) until every delivery is counted and two
// scrapes agree.
func scrapeAfter(admin string, before floorCounters, deliveries int) (floorCounters, error) {
	var last floorCounters
	for i := range 100 {
		c, err := scrapeFloor(admin)
		if err != nil {
			return c, err
		}
		if i > 0 && c.deliveries-before.deliveries >= float64(deliveries) && c.writes == last.writes {
			return c, nil
		}
		last = c
		time.Sleep(20 * time.Millisecond)
	}
	return last, fmt.Errorf("the gateway's counters did not settle: %.0f of %d deliveries counted",
		last.deliveries-before.deliveries, deliveries)
}

func mechanism(c0, c1 floorCounters, deliveries int, split []int, toFirst time.Duration) burstMechanism {
	writes := max(c1.writes-c0.writes, 1)
	m := burstMechanism{
		framesPerWrite:    (c1.pushes - c0.pushes) / writes,
		writesPerDelivery: writes / float64(deliveries),
		batches:           c1.batches - c0.batches,
		split:             split,
		toFirst:           toFirst,
	}
	var hist []string
	prev := 0.0
	for _, ub := range slices.Sorted(maps.Keys(c1.batchBuckets)) {
		n := c1.batchBuckets[ub] - c0.batchBuckets[ub]
		if n-prev > 0 {
			hist = append(hist, fmt.Sprintf("≤%.0f:%.0f", ub, n-prev))
		}
		prev = n
	}
	m.line = fmt.Sprintf("first receipt %.1f ms after the call, %.2f frames per write, %.3f writes per delivery, %.0f batches of %.1f records (%s), partitions %v",
		ms(toFirst), m.framesPerWrite, m.writesPerDelivery, m.batches, (c1.batchRecords-c0.batchRecords)/max(m.batches, 1),
		strings.Join(hist, " "), split)
	return m
}

// partitionOf is the partition a push.All() record with this message id lands on: its key is
// the message id, placed by the publisher's Murmur2Balancer.
func partitionOf(id string) int {
	parts := make([]int, floorPartitions)
	for i := range parts {
		parts[i] = i
	}
	return (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(id)}, parts...)
}
