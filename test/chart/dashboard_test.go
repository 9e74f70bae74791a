package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	"github.com/tcpgateway/tcpgateway/controllers" // registers the operator's metrics
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
)

// recorder is a prometheus.Registerer that keeps the names of what is registered with it.
type recorder struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return false }

// knownMetrics are the names of every metric the gateway registers (gateway/metrics, all of
// them, series or not) and those the operator's registry exports (its own are present from
// start; controller-runtime's appear with a controller, and the dashboard uses none).
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	r := &recorder{names: map[string]bool{}}
	metrics.New(r)
	metrics.NewDownlink(r)
	if len(r.names) < 40 {
		t.Fatalf("only %d gateway metrics recorded", len(r.names))
	}
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		r.names[f.GetName()] = true
	}
	if !r.names["tcpgw_operator_topic_operations_total"] {
		t.Fatalf("the operator's metrics are not registered (%s)", controllers.AppName)
	}
	return r.names
}

// promqlWords are the PromQL functions, aggregations and keywords the dashboard may use; any
// other identifier in an expression is taken for a metric name and must exist.
var promqlWords = []string{
	"sum", "min", "max", "avg", "count", "topk", "bottomk", "rate", "irate", "increase", "delta",
	"histogram_quantile", "label_values", "clamp_min", "abs", "time", "vector",
	"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
}

var (
	promqlStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promqlMatchers  = regexp.MustCompile(`\{[^{}]*\}`)
	promqlRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGroupings = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdents    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// Grafana's label_values(selector, label): the label is no metric.
	labelValues = regexp.MustCompile(`label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)`)
)

// metricNames lists the metric names an expression selects: what remains once strings,
// label matchers, ranges, grouping label lists, numbers, functions and keywords are removed.
// An identifier it does not know is reported as a metric, so an unknown function fails the
// test rather than hiding a name.
func metricNames(expr string) []string {
	e := labelValues.ReplaceAllString(expr, "label_values($1)")
	e = promqlStrings.ReplaceAllString(e, " ")
	e = promqlMatchers.ReplaceAllString(e, " ")
	e = promqlRanges.ReplaceAllString(e, " ")
	e = promqlGroupings.ReplaceAllString(e, " $1 ")
	var names []string
	for _, id := range promqlIdents.FindAllString(e, -1) {
		if !slices.Contains(promqlWords, id) {
			names = append(names, id)
		}
	}
	return names
}

func TestMetricNamesExtractor(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (reason) (rate(tcpgw_closes_total{namespace=~"$namespace", x="a{b}"}[$__rate_interval]))`: {"tcpgw_closes_total"},
		`histogram_quantile(0.99, sum by (le, route) (rate(tcpgw_uplink_duration_seconds_bucket[5m])))`:   {"tcpgw_uplink_duration_seconds_bucket"},
		`sum by (pod) (tcpgw_connections and on (pod) (tcpgw_draining == 1))`:                             {"tcpgw_connections", "tcpgw_draining"},
		`label_values(tcpgw_connections{namespace=~"$namespace"}, app_kubernetes_io_instance)`:            {"tcpgw_connections"},
		`sum(rate(tcpgw_made_up_total[5m])) / predict_linear(tcpgw_sessions[1h], 60)`:                     {"tcpgw_made_up_total", "predict_linear", "tcpgw_sessions"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %v, want %v", expr, got, want)
		}
	}
}

type dashboard struct {
	Templating struct {
		List []struct {
			Name  string
			Query json.RawMessage
		}
	}
	Panels []struct {
		Title   string
		Targets []struct{ Expr string }
	}
}

func readDashboard(t *testing.T) (dashboard, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t), "dashboards", "tcpgateway.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboards/tcpgateway.json: %v", err)
	}
	return d, data
}

// Every metric the dashboard's PromQL names is one the gateway or the operator registers, so
// a renamed metric fails here instead of leaving an empty panel; and the dashboard covers
// what it is for.
func TestDashboardMetricsExist(t *testing.T) {
	known := knownMetrics(t)
	d, _ := readDashboard(t)
	used := map[string]bool{}
	check := func(where, expr string) {
		for _, name := range metricNames(expr) {
			used[name] = true
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && known[b] {
					base = b
				}
			}
			if !known[base] {
				t.Errorf("%s: %q is not a metric the gateway or the operator registers (in %s)", where, name, expr)
			}
		}
	}
	exprs := 0
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs++
			check("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		var q struct{ Query string }
		if json.Unmarshal(v.Query, &q) == nil && q.Query != "" {
			check("variable "+v.Name, q.Query)
		}
	}
	if exprs < 10 {
		t.Errorf("%d queries", exprs)
	}
	for _, want := range []string{
		"tcpgw_connections", "tcpgw_handshakes_total", "tcpgw_closes_total", "tcpgw_downlink_deliveries_total",
		"tcpgw_downlink_lag", "tcpgw_drain_phase_seconds", "tcpgw_draining", "tcpgw_receipts_total",
	} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}

// dashboards.enabled ships the file, unchanged, in a ConfigMap with the sidecar's label.
func TestDashboardConfigMap(t *testing.T) {
	h := newHelm(t)
	if _, found := byKindAll(render(t, h, testNamespace))["ConfigMap"]; found {
		t.Error("a dashboard ConfigMap by default")
	}
	var cm corev1.ConfigMap
	decode(t, byKind(t, render(t, h, testNamespace, "--set", "dashboards.enabled=true,dashboards.namespace=monitoring",
		"--set", "dashboards.annotations.grafana_folder=tcpgateway"))["ConfigMap"], &cm)
	_, want := readDashboard(t)
	if strings.TrimSpace(cm.Data["tcpgateway.json"]) != strings.TrimSpace(string(want)) {
		t.Error("the ConfigMap's tcpgateway.json differs from dashboards/tcpgateway.json")
	}
	if cm.Labels["grafana_dashboard"] != "1" || cm.Namespace != "monitoring" || cm.Annotations["grafana_folder"] != "tcpgateway" {
		t.Errorf("ConfigMap %s/%s labels %v annotations %v", cm.Namespace, cm.Name, cm.Labels, cm.Annotations)
	}
}

// gatewayMonitor selects the headless Services the operator makes, by the labels it puts on
// them, in every namespace or the listed ones, and scrapes their admin port.
func TestGatewayMonitor(t *testing.T) {
	h := newHelm(t)
	for _, o := range render(t, h, testNamespace, "--set", "metrics.serviceMonitor.enabled=true") {
		if o.GetKind() == "ServiceMonitor" && strings.HasSuffix(o.GetName(), "-gateways") {
			t.Error("a gateway ServiceMonitor by default")
		}
	}
	var sm struct {
		Metadata struct{ Name, Namespace string }
		Spec     struct {
			NamespaceSelector struct {
				Any        bool
				MatchNames []string `json:"matchNames"`
			} `json:"namespaceSelector"`
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			}
			TargetLabels []string `json:"targetLabels"`
			Endpoints    []struct{ Port, Path, Scheme, Interval string }
		}
	}
	o := byKind(t, render(t, h, testNamespace, "--set", "gatewayMonitor.enabled=true"))["ServiceMonitor"]
	if err := yaml.Unmarshal(o.raw, &sm); err != nil {
		t.Fatal(err)
	}
	gatewayLabels := map[string]string{
		controllers.LabelName: controllers.AppName, controllers.LabelComponent: "gateway", controllers.LabelManagedBy: controllers.ManagedBy,
	}
	if len(sm.Spec.Selector.MatchLabels) == 0 {
		t.Error("empty selector")
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if gatewayLabels[k] != v {
			t.Errorf("selector %s=%s: the operator's Services carry %v", k, v, gatewayLabels)
		}
	}
	if !sm.Spec.NamespaceSelector.Any || !slices.Equal(sm.Spec.TargetLabels, []string{controllers.LabelInstance}) ||
		len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "admin" || sm.Spec.Endpoints[0].Path != "/metrics" ||
		sm.Spec.Endpoints[0].Scheme != "http" || sm.Spec.Endpoints[0].Interval != "15s" {
		t.Errorf("gateway ServiceMonitor %+v", sm)
	}
	o = byKind(t, render(t, h, testNamespace, "--set", "gatewayMonitor.enabled=true", "--set-json", `gatewayMonitor.namespaces=["a","b"]`))["ServiceMonitor"]
	sm.Spec.NamespaceSelector.Any = false
	if err := yaml.Unmarshal(o.raw, &sm); err != nil {
		t.Fatal(err)
	}
	if sm.Spec.NamespaceSelector.Any || !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{"a", "b"}) {
		t.Errorf("namespaces a, b: %+v", sm.Spec.NamespaceSelector)
	}
}
