package metrics

import "github.com/prometheus/client_golang/prometheus"

// NewRebalanceRefused creates tcpgw_rebalance_refused_total{reason}: requests to POST
// /rebalance on the admin port refused before reaching the gateway (gateway/rebalance), with
// every reason present at 0.
func NewRebalanceRefused(reg prometheus.Registerer, reasons []string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tcpgw_rebalance_refused_total",
		Help: "Requests to POST /rebalance on the admin port refused, by reason: unauthenticated, stale, replayed, wrong_pod, invalid, too_large, busy.",
	}, []string{"reason"})
	reg.MustRegister(c)
	for _, r := range reasons {
		c.WithLabelValues(r)
	}
	return c
}
