//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	custommetricsv1beta2 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/test/traffic"
)

// The autoscaling cycle's sizes and bounds. The HPA steers to autoscaleTarget sessions per
// pod: the steady clients alone want ceil(30/20) = 2 pods (minReplicas), with the load
// clients ceil(70/20) = 4 (maxReplicas; 17.5 per pod is outside the HPA's 10% tolerance of
// 20, so it does not settle at 3), and back at 30 on 4 pods the HPA wants 2 again.
const (
	autoscaleTarget = 20
	autoscaleSteady = 30 // clients for the whole test, the ones checked for 0 lost
	autoscaleLoad   = 40 // clients added, then closed
	autoscaleRate   = 50 // records/s
	// hpaSyncPeriod is the controller-manager's HPA sync period on the e2e cluster.
	hpaSyncPeriod = 2 * time.Second
	// scaleDownStabilization is the HPA's scale-down window here (seconds): short, for the
	// test (the default is 300), but not shorter than the scale-in period (the pods'
	// terminationGracePeriodSeconds: hardDeadline 8 s + 10 s = 18 s). Within a period after a
	// scale-out the HPA counts from the replicas before it and would remove both added pods at
	// once; a window at least as long keeps the scale-in to one pod per period.
	scaleDownStabilization = 20
	// metricsAPIBound: from the gateway Ready to the custom metrics API answering with the
	// counts the pods report (the APIService is available since the operator started).
	metricsAPIBound = 30 * time.Second
	// scaleOutBound: from the load clients connected to 4 ready pods: an HPA sync (2 s), its
	// metric read, the StatefulSet creating two pods in order and their readiness; slack for
	// a loaded 2-core machine.
	scaleOutBound = 60 * time.Second
	// scaleInBound: from the load clients closed to 2 pods left: an HPA sync, the 20 s window,
	// then one pod per scale-in period (18 s), each drained (≤ 8 s); slack as above.
	scaleInBound = 100 * time.Second
)

// Issue 16: load up → the HPA scales out → the rebalance evens the load → load down → the HPA
// scales in with drains. The HPA reads tcpgw_sessions from the operator's custom metrics API
// through kube-apiserver's aggregator, as on a real cluster (here through the local cluster's
// stand-in for kube-proxy, test/cluster.ServiceProxy). Pushes and requests flow the whole
// time: every record reaches the steady clients once and in order.
func TestAutoscalingCycle(t *testing.T) {
	s := shared(t)
	const ns, name = "e2e-autoscale", "chat"
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	spec := s.gatewaySpec(2)
	spec.Rebalance = &v1alpha1.Rebalance{Enabled: true, Rate: rebalanceRate, Interval: rebalanceInterval}
	spec.Autoscaling = &v1alpha1.Autoscaling{MinReplicas: 2, MaxReplicas: 4, TargetConnectionsPerPod: autoscaleTarget,
		ScaleDownStabilizationSeconds: new(int32(scaleDownStabilization))}
	gw, addr := s.apply(ctx, t, ns, name, spec)
	s.waitPods(ctx, t, ns, "2 ready pods", func(pods map[string]*corev1.Pod) bool { return countReady(pods) == 2 })
	run := startTrafficSized(t, s, gw, addr, ns, autoscaleSteady, autoscaleRate)
	t0 := time.Now()

	// The custom metrics API, as the HPA controller reads it: the pods' own counts.
	took, values := s.waitCustomMetrics(ctx, t, ns, func(v map[string]int64) bool { return len(v) == 2 && sum(v) == autoscaleSteady })
	t.Logf("custom metrics API: %s %v (%v after the traffic started)", customMetricsPath(ns), values, took.Round(time.Millisecond))
	s.checkAPIServicesAvailable(ctx, t)
	hpa := s.waitHPA(ctx, t, ns, name, "the HPA reading the metric at 2 pods", metricsAPIBound, func(h *autoscalingv2.HorizontalPodAutoscaler) bool {
		return h.Status.DesiredReplicas == 2 && currentAverage(h) > 0
	})
	t.Logf("HPA before the load: current %d, desired %d, average %d sessions per pod (target %d)",
		hpa.Status.CurrentReplicas, hpa.Status.DesiredReplicas, currentAverage(hpa), autoscaleTarget)

	// Load up: the HPA wants 4, the StatefulSet makes them, the rebalance fills them.
	t1 := time.Now()
	load := traffic.Connect(t, traffic.FleetOptions{Addr: addr, First: autoscaleSteady, Clients: autoscaleLoad, Tag: "e2e-load",
		Token: func(user string, groups []string) string { return token(t, user, groups) }})
	t.Logf("%d more clients connected in %v", autoscaleLoad, time.Since(t1).Round(time.Millisecond))
	out := s.waitPodsWithin(ctx, t, ns, "4 ready pods after the load", scaleOutBound, func(pods map[string]*corev1.Pod) bool { return countReady(pods) == 4 })
	s.waitStatefulSetSettled(ctx, t, ns, name, 4)
	scaledOut := time.Now()
	t.Logf("the HPA scaled out to 4 in %v after the load (bound %v): %s", scaledOut.Sub(t1).Round(time.Millisecond), scaleOutBound, podList(out))
	if terms := s.terminations(ns); len(terms) != 0 {
		t.Errorf("scaling out terminated pods: %+v", terms)
	}
	_, counts := s.waitBalanced(ctx, t, ns, 4, rebalanceEven, rebalanceBound)
	t.Logf("every pod within %.0f%% of even %v after the scale-out settled (bound %v): %v",
		100*rebalanceEven, time.Since(scaledOut).Round(time.Millisecond), rebalanceBound, counts)
	_, values = s.waitCustomMetrics(ctx, t, ns, func(v map[string]int64) bool {
		return len(v) == 4 && sum(v) == autoscaleSteady+autoscaleLoad
	})
	t.Logf("custom metrics API at 4 pods: %v", values)

	// Load down: the HPA wants 2, the StatefulSet removes chat-3 then chat-2, each drained.
	t2 := time.Now()
	load.Close()
	in := s.waitPodsWithin(ctx, t, ns, "chat-0 and chat-1 only after the load left", scaleInBound, func(pods map[string]*corev1.Pod) bool {
		return len(pods) == 2 && countReady(pods) == 2 && pods["chat-0"] != nil && pods["chat-1"] != nil
	})
	s.waitStatefulSetSettled(ctx, t, ns, name, 2)
	t.Logf("the HPA scaled in to 2 in %v after the load left (bound %v): %s", time.Since(t2).Round(time.Millisecond), scaleInBound, podList(in))

	run.finish(t, t0)
	terms := s.terminations(ns)
	var ended []string
	for _, tm := range terms {
		ended = append(ended, tm.Name+fmt.Sprintf(" after %v", tm.Took.Round(time.Millisecond)))
		if out[tm.Name] == nil || out[tm.Name].UID != tm.UID || (tm.Name != "chat-2" && tm.Name != "chat-3") {
			t.Errorf("terminated %s (%s), not one of the two pods the scale-out added", tm.Name, tm.UID)
		}
	}
	if len(terms) != 2 {
		t.Errorf("%d pods terminated (%v), want chat-2 and chat-3", len(terms), ended)
	}
	checkGraceful(t, terms)
	t.Logf("drained by the scale-in: %s", strings.Join(ended, ", "))
	for _, ac := range run.fleet.Clients {
		if srv := ac.Server(); srv != "chat-0" && srv != "chat-1" {
			conns, discs := ac.Events()
			t.Errorf("client %d is on %q after the scale-in: %s", ac.Index, srv, traffic.History(conns, discs, t0))
		}
	}
	mv := traffic.CheckMoves(run.fleet.Clients, "", t0)
	if len(mv.ResumeBad) > 0 {
		t.Errorf("%d reconnects did not resume completely, e.g. %s", len(mv.ResumeBad), strings.Join(mv.ResumeBad[:min(3, len(mv.ResumeBad))], "; "))
	}
	dups := 0
	for _, ac := range load.Clients {
		dups += ac.Duplicates()
	}
	if dups > 0 {
		t.Errorf("the load clients got %d records twice", dups)
	}
	byRebalance, byScaleIn := traffic.CheckMoves(run.fleet.Clients, "", t1), traffic.CheckMoves(run.fleet.Clients, "", t2)
	t.Logf("steady clients moved (every handshake resumed COMPLETE): %d of %d after the load came (the first back %v after it), %d after it left (the last back %v after it)",
		len(byRebalance.Reconnects), autoscaleSteady, firstMove(byRebalance).Round(time.Millisecond),
		len(byScaleIn.Reconnects), byScaleIn.Last().Round(time.Millisecond))
	hpa = s.waitHPA(ctx, t, ns, name, "the HPA settled at 2", metricsAPIBound, func(h *autoscalingv2.HorizontalPodAutoscaler) bool {
		return h.Status.CurrentReplicas == 2 && h.Status.DesiredReplicas == 2
	})
	// The HPA's own record: 2 → 4, then one pod per scale-in period (never two drains at once).
	rescales := s.rescales(ctx, t, ns)
	var sizes []int
	for _, r := range rescales {
		sizes = append(sizes, r.size)
	}
	if !slices.Equal(sizes, []int{4, 3, 2}) {
		t.Errorf("the HPA rescaled to %v, want [4 3 2]", sizes)
	} else {
		period := time.Duration(hpa.Spec.Behavior.ScaleDown.Policies[0].PeriodSeconds) * time.Second
		// Event times have whole seconds.
		if gap := rescales[2].at.Sub(rescales[1].at); gap < period-time.Second {
			t.Errorf("the HPA removed the second pod %v after the first, within its scale-in period %v", gap, period)
		}
		t.Logf("HPA rescales (Event times, whole seconds): to 4 %.0fs after the load came, to 3 %.0fs after it left, to 2 %.0fs later (scale-in period %v)",
			rescales[0].at.Sub(t1).Seconds(), rescales[1].at.Sub(t2).Seconds(), rescales[2].at.Sub(rescales[1].at).Seconds(), period)
	}
	t.Logf("HPA after the cycle: current %d, desired %d, average %d sessions per pod; whole cycle %v",
		hpa.Status.CurrentReplicas, hpa.Status.DesiredReplicas, currentAverage(hpa), time.Since(t1).Round(time.Millisecond))
}

// customMetricsPath is the custom metrics API's URL path of tcpgw_sessions of every pod of ns.
func customMetricsPath(ns string) string {
	return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/*/" + v1alpha1.AutoscalingMetric
}

// waitCustomMetrics reads tcpgw_sessions of the pods of ns through kube-apiserver (its
// aggregator proxies to the operator) until cond holds of the values, per pod; it fails the
// test after metricsAPIBound.
func (s *system) waitCustomMetrics(ctx context.Context, t *testing.T, ns string, cond func(map[string]int64) bool) (time.Duration, map[string]int64) {
	t.Helper()
	var values map[string]int64
	var last error
	took, ok := poll(ctx, metricsAPIBound, func(ctx context.Context) bool {
		values, last = s.customMetrics(ctx, ns)
		return last == nil && cond(values)
	})
	if !ok {
		t.Fatalf("custom metrics API after %v: %v (last error: %v)", took.Round(time.Millisecond), values, last)
	}
	return took, values
}

func (s *system) customMetrics(ctx context.Context, ns string) (map[string]int64, error) {
	raw, err := s.cluster.Client.Discovery().RESTClient().Get().AbsPath(customMetricsPath(ns)).
		Param("labelSelector", "app.kubernetes.io/instance=chat").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	var list custommetricsv1beta2.MetricValueList
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, it := range list.Items {
		if it.DescribedObject.Kind != "Pod" || it.Metric.Name != v1alpha1.AutoscalingMetric {
			return nil, fmt.Errorf("unexpected item %+v", it)
		}
		out[it.DescribedObject.Name] = it.Value.Value()
	}
	return out, nil
}

// checkAPIServicesAvailable: the aggregator's availability check passed for the chart's
// APIServices (the Service's EndpointSlice, discovery through the proxy with the operator's
// certificate verified against the caBundle).
func (s *system) checkAPIServicesAvailable(ctx context.Context, t *testing.T) {
	t.Helper()
	for _, v := range []string{"v1beta2", "v1beta1"} {
		as := &unstructured.Unstructured{}
		as.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"})
		if err := s.k.Get(ctx, crclient.ObjectKey{Name: v + ".custom.metrics.k8s.io"}, as); err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(as.Object, "status", "conditions")
		available := false
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Available" {
				available = m["status"] == "True"
				if !available {
					t.Errorf("APIService %s: Available %v: %v: %v", as.GetName(), m["status"], m["reason"], m["message"])
				}
			}
		}
		if !available {
			t.Errorf("APIService %s is not Available: %v", as.GetName(), conds)
		}
		insecure, _, _ := unstructured.NestedBool(as.Object, "spec", "insecureSkipTLSVerify")
		if ca, _, _ := unstructured.NestedString(as.Object, "spec", "caBundle"); insecure || ca == "" {
			t.Errorf("APIService %s does not verify the operator's certificate", as.GetName())
		}
	}
}

// waitHPA waits until cond holds of the HorizontalPodAutoscaler, failing the test after within.
func (s *system) waitHPA(ctx context.Context, t *testing.T, ns, name, what string, within time.Duration, cond func(*autoscalingv2.HorizontalPodAutoscaler) bool) *autoscalingv2.HorizontalPodAutoscaler {
	t.Helper()
	h := &autoscalingv2.HorizontalPodAutoscaler{}
	took, ok := poll(ctx, within, func(ctx context.Context) bool {
		return s.k.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: name}, h) == nil && cond(h)
	})
	if !ok {
		t.Fatalf("%s: not after %v: status %+v", what, took.Round(time.Millisecond), h.Status)
	}
	return h
}

// currentAverage is the HPA's last read of the average sessions per pod (0: none yet).
func currentAverage(h *autoscalingv2.HorizontalPodAutoscaler) int64 {
	for _, m := range h.Status.CurrentMetrics {
		if m.Pods != nil && m.Pods.Current.AverageValue != nil {
			return m.Pods.Current.AverageValue.Value()
		}
	}
	return 0
}

func sum(v map[string]int64) int64 {
	var n int64
	for _, x := range v {
		n += x
	}
	return n
}

// rescale is one SuccessfulRescale Event of an HPA: the new size and when.
type rescale struct {
	size int
	at   time.Time
}

// rescales lists the HPAs' SuccessfulRescale Events of ns in time order ("New size: N;
// reason: ...", the HPA controller's message).
func (s *system) rescales(ctx context.Context, t *testing.T, ns string) []rescale {
	t.Helper()
	var evs corev1.EventList
	if err := s.k.List(ctx, &evs, crclient.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []rescale
	for _, ev := range evs.Items {
		if ev.InvolvedObject.Kind != "HorizontalPodAutoscaler" || ev.Reason != "SuccessfulRescale" {
			continue
		}
		var r rescale
		if _, err := fmt.Sscanf(ev.Message, "New size: %d;", &r.size); err != nil {
			t.Errorf("HPA event %q: %v", ev.Message, err)
			continue
		}
		r.at = ev.FirstTimestamp.Time
		if r.at.IsZero() {
			r.at = ev.EventTime.Time
		}
		for range max(ev.Count, 1) {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b rescale) int { return a.at.Compare(b.at) })
	return out
}

// firstMove is when the first client came back (0: none did).
func firstMove(m traffic.Moves) time.Duration {
	if len(m.Reconnects) == 0 {
		return 0
	}
	return m.Reconnects[0]
}
