//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/controllers"
	"github.com/tcpgateway/tcpgateway/controllers/sessioncount"
	"github.com/tcpgateway/tcpgateway/test/traffic"
)

// The rebalance bound this test holds the system to: after a scale-out settles, every pod's
// session count within rebalanceEven of the mean within rebalanceBound. With the simulator's
// least-connections balancer one round suffices: the first read at the settling, the GOAWAYs
// (30 sessions at 50/s: 0.6 s), the reconnects (their jittered delay), and the check; the rest
// is slack for a loaded 2-core machine.
const (
	rebalanceEven     = 0.20
	rebalanceBound    = 30 * time.Second
	rebalanceInterval = "3s"
	rebalanceRate     = 50
)

// Issue 16: scale 2 → 4 under traffic. The two new pods start empty; the operator reads the
// counts, asks the two full pods to move their surplus (GOAWAY REBALANCE, paced) and the
// clients resume on the new pods through the LB: every pod within 20% of even within the
// bound, every push delivered once and in order, every request answered, nobody left behind.
func TestScaleOutRebalances(t *testing.T) {
	s := shared(t)
	const ns, name = "e2e-rebalance", "chat"
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	spec := s.gatewaySpec(2)
	spec.Rebalance = &v1alpha1.Rebalance{Enabled: true, Rate: rebalanceRate, Interval: rebalanceInterval}
	gw, addr := s.apply(ctx, t, ns, name, spec)
	s.waitPods(ctx, t, ns, "2 ready pods", func(pods map[string]*corev1.Pod) bool { return countReady(pods) == 2 })
	run := startTraffic(t, s, gw, addr, ns)
	if c := s.sessionCounts(ctx, t, ns); len(c) != 2 {
		t.Fatalf("session counts before the scale-out: %v", c)
	}
	s.waitBalanced(ctx, t, ns, 2, rebalanceEven, rebalanceBound) // least connections spread them

	t0 := time.Now()
	s.patchGateway(ctx, t, ns, name, func(spec *v1alpha1.TCPGatewaySpec) { spec.Replicas = new(int32(4)) })
	pods := s.waitPods(ctx, t, ns, "4 ready pods", func(pods map[string]*corev1.Pod) bool { return countReady(pods) == 4 })
	s.waitStatefulSetSettled(ctx, t, ns, name, 4)
	settled := time.Now()
	t.Logf("scaled out to 4 in %v: %s", settled.Sub(t0).Round(time.Millisecond), podList(pods))

	_, counts := s.waitBalanced(ctx, t, ns, 4, rebalanceEven, rebalanceBound)
	t.Logf("every pod within %.0f%% of even %v after the StatefulSet settled (bound %v): %v",
		100*rebalanceEven, time.Since(settled).Round(time.Millisecond), rebalanceBound, counts)

	// Hysteresis: the next read after the moved clients settled finds the fleet inside the
	// bound and asks nothing more (one round with least connections).
	var st *v1alpha1.RebalanceStatus
	if _, ok := poll(ctx, rebalanceBound, func(ctx context.Context) bool {
		gw := &v1alpha1.TCPGateway{}
		if err := s.k.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: name}, gw); err != nil {
			return false
		}
		st = gw.Status.Rebalance
		return st != nil && st.State == v1alpha1.RebalanceBalanced && st.LastStartTime != nil
	}); !ok {
		t.Fatalf("status.rebalance not Balanced after a rebalance within %v: %+v", rebalanceBound, st)
	}
	if st.LastStartTime.Time.Before(t0) || st.LastMoved == 0 {
		t.Errorf("status.rebalance %+v: no rebalance recorded after the scale-out", st)
	}
	t.Logf("status.rebalance: state %s, imbalance %s, last moved %d at %v after the scale-out began; %s",
		st.State, st.Imbalance, st.LastMoved, st.LastStartTime.Sub(t0).Round(time.Millisecond), st.Message)

	run.finish(t, t0)
	if terms := s.terminations(ns); len(terms) != 0 {
		t.Errorf("the scale-out and rebalance terminated pods: %+v", terms)
	}
	mv := traffic.CheckMoves(run.fleet.Clients, "", t0)
	if len(mv.ResumeBad) > 0 {
		t.Errorf("%d reconnects did not resume completely, e.g. %s", len(mv.ResumeBad), strings.Join(mv.ResumeBad[:min(3, len(mv.ResumeBad))], "; "))
	}
	perPod := map[string]int{}
	for _, ac := range run.fleet.Clients {
		perPod[ac.Server()]++
	}
	t.Logf("clients moved: %d of %d, the last back %v after the scale-out began, at most %d handshakes in one second; clients per pod %v",
		len(mv.Reconnects), trafficClients, mv.Last().Round(time.Millisecond), mv.MaxPerSecond, perPod)
	if len(mv.Reconnects) == 0 {
		t.Error("no client moved: the pods were balanced by something else than the rebalance")
	}
	if reasons := s.gatewayEvents(ctx, t, ns); !slices.Contains(reasons, controllers.EventRebalancing) || slices.Contains(reasons, controllers.EventRebalanceRefused) {
		t.Errorf("Events about the TCPGateway %v: want %s and no %s", reasons, controllers.EventRebalancing, controllers.EventRebalanceRefused)
	}
	// One round: the Event series of Rebalancing counts one occurrence.
	if n := s.eventCount(ctx, t, ns, controllers.EventRebalancing); n != 1 {
		t.Errorf("%d Rebalancing Events, want 1 (one round with a least-connections balancer)", n)
	}
}

// sessionCounts reads each ready gateway pod's session count of ns as the operator does
// (controllers/sessioncount on the admin port); a pod whose count cannot be read fails the test.
func (s *system) sessionCounts(ctx context.Context, t *testing.T, ns string) map[string]int64 {
	t.Helper()
	counts, err := s.readSessionCounts(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// readSessionCounts is sessionCounts returning the first failure.
func (s *system) readSessionCounts(ctx context.Context, ns string) (map[string]int64, error) {
	var list corev1.PodList
	if err := s.k.List(ctx, &list, crclient.InNamespace(ns)); err != nil {
		return nil, err
	}
	var r sessioncount.Reader
	out := map[string]int64{}
	for _, c := range r.Read(ctx, sessioncount.Targets(list.Items, "admin")) {
		if c.Err != nil {
			return nil, fmt.Errorf("reading the session count of %s: %w", c.Pod, c.Err)
		}
		out[c.Pod] = c.Sessions
	}
	return out, nil
}

// waitBalanced waits until ns has pods ready pods each holding within even (a fraction) of
// their mean session count, and returns how long it took and the counts. It fails the test
// after within.
func (s *system) waitBalanced(ctx context.Context, t *testing.T, ns string, pods int, even float64, within time.Duration) (time.Duration, map[string]int64) {
	t.Helper()
	var counts map[string]int64
	var last error
	took, ok := poll(ctx, within, func(ctx context.Context) bool {
		c, err := s.readSessionCounts(ctx, ns)
		if err != nil {
			last = err // a pod just ready, or just told to go: read again
			return false
		}
		counts = c
		return len(counts) == pods && balanced(counts, even)
	})
	if !ok {
		s.dumpPods(t, ns)
		t.Fatalf("pods not within %.0f%% of even after %v: %v (last read error: %v)", 100*even, took.Round(time.Millisecond), counts, last)
	}
	return took, counts
}

// balanced: every count within even (a fraction) of the mean, and some sessions at all.
func balanced(counts map[string]int64, even float64) bool {
	var total int64
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return false
	}
	mean := float64(total) / float64(len(counts))
	for _, n := range counts {
		if d := float64(n) - mean; d > even*mean || -d > even*mean {
			return false
		}
	}
	return true
}

// gatewayEvents lists the reasons of the Events about TCPGateways in ns, in name order.
func (s *system) gatewayEvents(ctx context.Context, t *testing.T, ns string) []string {
	t.Helper()
	var evs eventsv1.EventList
	if err := s.k.List(ctx, &evs, crclient.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ev := range evs.Items {
		if ev.Regarding.Kind == "TCPGateway" {
			seen[ev.Reason] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// eventCount is how many times Events with reason about TCPGateways in ns happened (series
// included).
func (s *system) eventCount(ctx context.Context, t *testing.T, ns, reason string) int {
	t.Helper()
	var evs eventsv1.EventList
	if err := s.k.List(ctx, &evs, crclient.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs.Items {
		if ev.Regarding.Kind == "TCPGateway" && ev.Reason == reason {
			n++
			if ev.Series != nil {
				n += int(ev.Series.Count) - 1
			}
		}
	}
	return n
}
