package metrics

import "github.com/prometheus/client_golang/prometheus"

// Events holds the session-event publisher's collectors (gateway/events).
type Events struct {
	Published *prometheus.CounterVec // kind
	Dropped   *prometheus.CounterVec // reason
}

// Reasons a session event was dropped (tcpgw_session_events_dropped_total{reason}).
const (
	// EventQueueFull: the in-memory queue (kafka.eventsQueue) was full, Kafka being slow or
	// down; the data plane does not wait.
	EventQueueFull = "queue_full"
	// EventWriteFailed: Kafka refused the batch or the writer gave up on it (broker down,
	// unknown topic, not authorised).
	EventWriteFailed = "write_failed"
	// EventStopped: the event came after the publisher stopped (the process is exiting), or
	// was still queued when its final flush ran out of time.
	EventStopped = "stopped"
)

// NewEvents creates the collectors, every label value present at 0, and registers them.
func NewEvents(reg prometheus.Registerer, kinds []string) *Events {
	m := &Events{
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_session_events_published_total",
			Help: "Session events Kafka stored on the events topic, by kind (connected, disconnected, replaced, resumed).",
		}, []string{"kind"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_session_events_dropped_total",
			Help: "Session events dropped, by reason: queue_full (Kafka slow or down), write_failed, stopped.",
		}, []string{"reason"}),
	}
	for _, k := range kinds {
		m.Published.WithLabelValues(k)
	}
	for _, r := range []string{EventQueueFull, EventWriteFailed, EventStopped} {
		m.Dropped.WithLabelValues(r)
	}
	reg.MustRegister(m.Published, m.Dropped)
	return m
}
