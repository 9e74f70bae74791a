package gwproc

import (
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of /metrics.
type Metrics map[string]*dto.MetricFamily

// Metrics scrapes the gateway's /metrics.
func (g *Gateway) Metrics() (Metrics, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + g.AdminAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: %s", g.ID, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// Metric is the sum of the counter, gauge or untyped series of family name whose labels
// include every pair of labels (name, value, name, value...); 0 when none matches.
func (g *Gateway) Metric(name string, labels ...string) (float64, error) {
	ms, err := g.Metrics()
	if err != nil {
		return 0, err
	}
	return ms.Value(name, labels...), nil
}

// Value is the sum of the series of family name whose labels include every pair of labels
// (name, value, name, value...); 0 when none matches.
func (ms Metrics) Value(name string, labels ...string) float64 {
	fam, ok := ms[name]
	if !ok {
		return 0
	}
	var sum float64
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == pairs[i] && lp.GetValue() == pairs[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
