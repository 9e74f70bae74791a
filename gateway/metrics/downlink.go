package metrics

import "github.com/prometheus/client_golang/prometheus"

// Downlink holds the Kafka consumer's and receipt writer's collectors.
type Downlink struct {
	Records     *prometheus.CounterVec // result
	Deliveries  prometheus.Counter
	Lag         *prometheus.GaugeVec // partition
	Latency     prometheus.Histogram
	Receipts    *prometheus.CounterVec // kind, result
	KafkaUp     prometheus.Gauge
	Replayed    prometheus.Counter
	Resumes     *prometheus.CounterVec // status
	Window      prometheus.Gauge
	PendingAcks prometheus.Gauge
}

// Record results.
const (
	RecordDelivered = "delivered" // at least one session here got it
	RecordSkipped   = "skipped"   // no target session on this pod
	RecordExpired   = "expired"   // past expires_at_ms
	RecordUndecoded = "undecodable"
	RecordNoTarget  = "missing_target"
	RecordNoMessage = "missing_message_id"
)

// NewDownlink creates the collectors and registers them with reg.
func NewDownlink(reg prometheus.Registerer) *Downlink {
	m := &Downlink{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_downlink_records_total",
			Help: "Downlink records read from Kafka by result: delivered, skipped (no target session here), expired, or a bad-record reason.",
		}, []string{"result"}),
		Deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpgw_downlink_deliveries_total", Help: "PUSH frames queued to sessions (a broadcast counts once per session).",
		}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tcpgw_downlink_lag", Help: "Records behind the partition's high watermark at the last fetch.",
		}, []string{"partition"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tcpgw_downlink_latency_seconds",
			Help:    "From the record's created_at_ms to its PUSH being queued (clock skew between publisher and gateway included).",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		Receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_receipts_total", Help: "Receipts written to the receipts topic, by kind and result (ok, error).",
		}, []string{"kind", "result"}),
		KafkaUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tcpgw_kafka_up", Help: "1 when the last metadata probe of the downlink topic succeeded.",
		}),
	}
	m.Replayed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tcpgw_downlink_replayed_total", Help: "PUSH frames replayed to resuming sessions from the recent-record window.",
	})
	m.Resumes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tcpgw_resumes_total", Help: "Session resumes by outcome: complete, or not_recovered when records were older than the window.",
	}, []string{"status"})
	m.Window = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tcpgw_downlink_window_records", Help: "Records held in the replay window, all partitions.",
	})
	m.PendingAcks = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tcpgw_pending_acks", Help: "Deliveries waiting for an ack or reply before their expiry (an EXPIRED receipt is written if none comes).",
	})
	reg.MustRegister(m.Records, m.Deliveries, m.Lag, m.Latency, m.Receipts, m.KafkaUp, m.Replayed, m.Resumes, m.Window, m.PendingAcks)
	return m
}
