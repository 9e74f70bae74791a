package metrics

import "github.com/prometheus/client_golang/prometheus"

// Downlink holds the Kafka consumer's and receipt writer's collectors.
type Downlink struct {
	Records    *prometheus.CounterVec // result
	Deliveries prometheus.Counter
	// BatchRecords observes the records of each delivery batch a partition's deliverer wrote
	// (gateway/downlink/batch.go); its count is the batches.
	BatchRecords prometheus.Histogram
	Lag          *prometheus.GaugeVec // partition
	Latency      prometheus.Histogram
	Receipts     *prometheus.CounterVec // kind, result
	KafkaUp      prometheus.Gauge
	// KafkaErrors counts failed Kafka probes by kafkasec reason.
	KafkaErrors *prometheus.CounterVec // reason
	// TopicsMissing counts the configured topics Kafka does not know.
	TopicsMissing prometheus.Gauge
	Replayed      prometheus.Counter
	Resumes       *prometheus.CounterVec // status
	Window        prometheus.Gauge
	// AnswersForgotten counts pushes a session could no longer answer because it held
	// limits.pendingAnswers newer ones.
	AnswersForgotten prometheus.Counter

	// The expiry tracker (gateway/downlink/expiry_tracker.go), over the receipts partitions
	// this pod owns in the expiry group.
	PendingAcks      prometheus.Gauge
	ExpiryEntries    prometheus.Gauge
	ExpiryPartitions prometheus.Gauge
	ExpiryWritten    prometheus.Counter
	ExpiryDropped    *prometheus.CounterVec // receipt
	ExpiryRebalances prometheus.Counter
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
		BatchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tcpgw_downlink_batch_records",
			Help:    "Records per delivery batch: the records one partition's deliverer queued on their sessions before writing to them.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
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
		TopicsMissing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tcpgw_kafka_topics_missing", Help: "Configured topics (downlink, receipts) that Kafka does not know, at the last probe.",
		}),
		KafkaUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tcpgw_kafka_up", Help: "1 when Kafka answered the last probe, also to say a topic is missing (tcpgw_kafka_topics_missing).",
		}),
		KafkaErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_kafka_errors_total",
			Help: "Failed Kafka probes (every 2 s while failing) by reason: kafka_auth_failed, kafka_tls_failed, kafka_unreachable.",
		}, []string{"reason"}),
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
	m.AnswersForgotten = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tcpgw_answers_forgotten_total",
		Help: "Pushes awaiting an answer that a session stopped holding as answerable because it held limits.pendingAnswers newer ones (their answer is refused; the publisher gets EXPIRED).",
	})
	m.PendingAcks = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tcpgw_pending_acks",
		Help: "Delivered pushes waiting for an ack or reply before their expiry, tracked on the receipts partitions this pod owns (an EXPIRED receipt is written if none comes).",
	})
	m.ExpiryEntries = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tcpgw_expiry_entries",
		Help: "Entries the expiry tracker holds on the receipts partitions this pod owns: pending deliveries and tombstones of answered ones (bounded by the tracker's maxEntries).",
	})
	m.ExpiryPartitions = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tcpgw_expiry_partitions_owned", Help: "Receipts partitions this pod owns in the expiry consumer group.",
	})
	m.ExpiryWritten = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tcpgw_expiry_receipts_written_total",
		Help: "EXPIRED receipts the expiry tracker wrote for delivered pushes unanswered at their expiry (a write that failed and is retried counts again).",
	})
	m.ExpiryDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tcpgw_expiry_dropped_total",
		Help: "Receipts the expiry tracker could not hold because it held its maximum of entries: delivered (that push will get no EXPIRED) or answer (an answer read before its DELIVERED).",
	}, []string{"receipt"})
	m.ExpiryRebalances = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tcpgw_expiry_generations_total", Help: "Expiry group generations this pod joined (each one a rebalance).",
	})
	reg.MustRegister(m.Records, m.Deliveries, m.BatchRecords, m.Lag, m.Latency, m.Receipts, m.KafkaUp, m.KafkaErrors, m.TopicsMissing, m.Replayed, m.Resumes, m.Window, m.AnswersForgotten,
		m.PendingAcks, m.ExpiryEntries, m.ExpiryPartitions, m.ExpiryWritten, m.ExpiryDropped, m.ExpiryRebalances)
	return m
}
