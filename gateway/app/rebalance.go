package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tcpgateway/tcpgateway/gateway/control"
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/rebalance"
)

// rebalanceEndpoint is the admin port's POST /rebalance with listen.rebalanceKeyFile (nil
// without): the operator's signed requests, each verified (gateway/rebalance) before it
// reaches Rebalance; refusals are counted and logged with their reason. The key must be
// readable at start: a pod without it would refuse every request.
func (a *App) rebalanceEndpoint(reg prometheus.Registerer) (http.Handler, error) {
	if a.cfg.Listen.RebalanceKeyFile == "" {
		return nil, nil
	}
	key := &rebalance.FileKey{Path: a.cfg.Listen.RebalanceKeyFile}
	if _, err := key.Key(); err != nil {
		return nil, fmt.Errorf("while reading listen.rebalanceKeyFile: %w", err)
	}
	var reasons []string
	for _, r := range rebalance.Reasons() {
		reasons = append(reasons, string(r))
	}
	refused := metrics.NewRebalanceRefused(reg, reasons)
	v := &rebalance.Verifier{Pod: a.cfg.ServerID, Key: key.Key}
	return rebalance.Handler(v, a.startRebalance, func(err error) {
		reason := string(rebalance.Invalid)
		var re *rebalance.Error
		if errors.As(err, &re) {
			reason = string(re.Reason)
		}
		refused.WithLabelValues(reason).Inc()
		a.log.Warn("rebalance request refused", "reason", reason, "err", err)
	}), nil
}

// startRebalance starts what a verified request asks, without waiting for the run.
func (a *App) startRebalance(count, rate int) rebalance.Answer {
	st, err := a.Rebalance(context.Background(), count, rate, false)
	var re *control.RebalanceError
	switch {
	case errors.As(err, &re):
		return rebalance.Answer{Result: re.Reason, Message: re.Message}
	case err != nil:
		return rebalance.Answer{Result: "error", Message: err.Error()}
	}
	a.log.Info("rebalance started by the operator", "count", st.Count, "rate", st.Rate, "sessions", st.Sessions)
	return rebalance.Answer{Result: rebalance.ResultStarted, WindowMs: st.WindowMs}
}
