package sessioncount

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The gauges read from a gateway's /metrics (gateway/metrics).
const (
	// SessionsMetric counts registered (handshaken) sessions: what a rebalance moves and
	// what a client of the LB is.
	SessionsMetric = "tcpgw_sessions"
	// DrainingMetric is 1 while the gateway drains.
	DrainingMetric = "tcpgw_draining"
	// RebalancingMetric is 1 while the gateway moves sessions away.
	RebalancingMetric = "tcpgw_rebalancing"
)

// MaxSessions bounds a credible count: far above what one process can hold (20,000 open
// files per process on these machines, ~1M with raised limits), so a larger value is garbage.
const MaxSessions = 1 << 24

// Sample is what one read of a pod's metrics says.
type Sample struct {
	Sessions    int64
	Draining    bool
	Rebalancing bool
}

// Parse reads a Prometheus text exposition of at most maxBytes bytes and returns the
// gateway's session count. Anything else is an *Error: a body over maxBytes is TooLarge (it
// is not parsed), text that does not parse is Malformed, a missing or unlabelled-twice
// tcpgw_sessions is Missing, a value that is not a whole number in [0, MaxSessions] is
// Malformed. tcpgw_draining and tcpgw_rebalancing are optional (absent means 0).
func Parse(r io.Reader, maxBytes int64) (Sample, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return Sample{}, &Error{Reason: Unreachable, Err: fmt.Errorf("while reading the body: %w", err)}
	}
	if int64(len(body)) > maxBytes {
		return Sample{}, &Error{Reason: TooLarge, Err: fmt.Errorf("body larger than %d bytes", maxBytes)}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return Sample{}, &Error{Reason: Malformed, Err: err}
	}
	sessions, err := gauge(families[SessionsMetric])
	if err != nil {
		return Sample{}, err
	}
	if sessions < 0 || sessions > MaxSessions || sessions != math.Trunc(sessions) {
		return Sample{}, &Error{Reason: Malformed, Err: fmt.Errorf("%s = %v: not a whole number in [0, %d]", SessionsMetric, sessions, MaxSessions)}
	}
	s := Sample{Sessions: int64(sessions)}
	for name, flag := range map[string]*bool{DrainingMetric: &s.Draining, RebalancingMetric: &s.Rebalancing} {
		if f := families[name]; f != nil {
			v, err := gauge(f)
			if err != nil {
				return Sample{}, err
			}
			*flag = v != 0
		}
	}
	return s, nil
}

// gauge is the value of a family holding exactly one unlabelled gauge.
func gauge(f *dto.MetricFamily) (float64, error) {
	switch {
	case f == nil:
		return 0, &Error{Reason: Missing, Err: errors.New("no " + SessionsMetric)}
	case f.GetType() != dto.MetricType_GAUGE && f.GetType() != dto.MetricType_UNTYPED:
		return 0, &Error{Reason: Malformed, Err: fmt.Errorf("%s is a %v, not a gauge", f.GetName(), f.GetType())}
	case len(f.GetMetric()) != 1 || len(f.GetMetric()[0].GetLabel()) != 0:
		return 0, &Error{Reason: Malformed, Err: fmt.Errorf("%s: %d series, want one without labels", f.GetName(), len(f.GetMetric()))}
	}
	m := f.GetMetric()[0]
	if m.GetGauge() != nil {
		return m.GetGauge().GetValue(), nil
	}
	return m.GetUntyped().GetValue(), nil
}
