package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/controllers/sessioncount"
	"github.com/tcpgateway/tcpgateway/gateway/rebalance"
)

// Rebalance (spec.rebalance): every interval the operator reads each ready pod's session
// count (controllers/sessioncount), decides with planRebalance, and asks the fullest pods to
// move their surplus by a signed POST /rebalance on their admin port (gateway/rebalance).
// Session counts change without any Kubernetes event, so this phase polls: with rebalancing
// enabled the reconcile is repeated every interval.

// Defaults of spec.rebalance for objects built in Go (the schema sets the same).
const (
	defaultRebalanceRate     = 50
	defaultRebalanceInterval = 30 * time.Second
	// rebalanceSendTimeout bounds one request to a pod.
	rebalanceSendTimeout = 2 * time.Second
)

// Event reasons of the rebalance.
const (
	// EventRebalancing (Normal): pods were asked to move sessions; the note says how many.
	EventRebalancing = "Rebalancing"
	// EventRebalanceRefused (Warning): a pod refused or did not answer a request.
	EventRebalanceRefused = "RebalanceRefused"
)

// resultUnreachable is the result label of a request that got no answer.
const resultUnreachable = "unreachable"

var rebalanceRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tcpgw_operator_rebalance_requests_total",
	Help: "Requests to gateway pods to move sessions away, by result: started, the pod's refusal (running, draining, bad_count, bad_rate), a refusal of the request itself (unauthenticated, stale, replayed, wrong_pod, invalid, too_large, busy), or unreachable.",
}, []string{"result"})

func init() {
	metrics.Registry.MustRegister(rebalanceRequests)
	for _, r := range []string{rebalance.ResultStarted, "running", "draining", "bad_count", "bad_rate", resultUnreachable} {
		rebalanceRequests.WithLabelValues(r)
	}
	for _, r := range rebalance.Reasons() {
		rebalanceRequests.WithLabelValues(string(r))
	}
}

// rebalanceClient posts the requests: no proxy, no redirects.
var rebalanceClient = sync.OnceValue(func() *http.Client {
	return &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 90 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
})

func rebalanceSettings(gw *v1alpha1.TCPGateway) (maxImbalance, rate int, interval time.Duration) {
	s := gw.Spec.Rebalance
	rate, interval = defaultRebalanceRate, defaultRebalanceInterval
	if s.Rate > 0 {
		rate = int(s.Rate)
	}
	if d, err := s.Interval.Parse(); err == nil && d > 0 {
		interval = d
	}
	return s.MaxImbalancePercent(), rate, interval
}

// reconcileRebalance runs the rebalance phase and returns when to look again (0 when
// rebalancing is off). It writes status.rebalance, never fails the reconcile: what went
// wrong is in the status message, the Events and the metrics.
func (r *TCPGatewayReconciler) reconcileRebalance(ctx context.Context, gw *v1alpha1.TCPGateway, o *observed) time.Duration {
	if !rebalanceEnabled(gw) {
		gw.Status.Rebalance = nil
		return 0
	}
	maxImbalance, rate, interval := rebalanceSettings(gw)
	st := gw.Status.Rebalance
	if st == nil {
		st = &v1alpha1.RebalanceStatus{}
		gw.Status.Rebalance = st
	}
	now := r.now()
	if st.LastEndTime != nil {
		// The last rebalance's GOAWAYs, then the clients' reconnects: counts read before
		// interval after its end would see clients still on their way.
		if next := st.LastEndTime.Add(interval); now.Before(next) {
			return next.Sub(now)
		}
	}
	if o.reconcileErr != nil || o.rebalanceKey == nil {
		st.State, st.Message = v1alpha1.RebalanceWaiting, "the objects are not reconciled"
		return interval
	}
	targets := sessioncount.Targets(o.pods, portNameAdmin)
	counts := r.SessionCounts.Read(ctx, targets)
	plan := planRebalance(rebalanceInput{MaxImbalance: maxImbalance, Rate: rate, Replicas: int(replicas(gw)),
		Settled: statefulSetSettled(o.statefulSet, replicas(gw)), Counts: counts})
	st.State, st.Message = plan.State, plan.Message
	if plan.Imbalance >= 0 {
		st.Imbalance = fmt.Sprintf("%d%%", plan.Imbalance)
	}
	if plan.State != v1alpha1.RebalanceRebalancing {
		return interval
	}
	addrs := map[string]string{}
	for _, t := range targets {
		addrs[t.Pod] = t.Addr
	}
	var started []rebalanceMove
	var refused []string
	for _, m := range plan.Moves {
		result, err := r.askToMove(ctx, o.rebalanceKey, addrs[m.Pod], m, now)
		rebalanceRequests.WithLabelValues(result).Inc()
		if result == rebalance.ResultStarted {
			started = append(started, m)
			continue
		}
		refused = append(refused, fmt.Sprintf("%s: %s (%v)", m.Pod, result, err))
	}
	if len(refused) > 0 {
		r.Recorder.Eventf(gw, nil, corev1.EventTypeWarning, EventRebalanceRefused, "Rebalance", "%s", strings.Join(refused, "; "))
		st.Message = plan.Message + "; refused: " + strings.Join(refused, "; ")
	}
	if len(started) == 0 {
		st.State = v1alpha1.RebalanceWaiting
		return interval
	}
	moved := 0
	for _, m := range started {
		moved += m.Count
	}
	st.LastStartTime = &metav1.Time{Time: now}
	st.LastEndTime = &metav1.Time{Time: now.Add(plan.Window)}
	st.LastMoved = int32(moved)
	st.Message = plan.Message + "; " + describeMoves(started)
	r.Recorder.Eventf(gw, nil, corev1.EventTypeNormal, EventRebalancing, "Rebalance",
		"%s above the mean (%s): %s", st.Imbalance, plan.Message, describeMoves(started))
	return plan.Window + interval
}

// askToMove sends one signed request and returns the result label (and the error or the
// pod's message).
func (r *TCPGatewayReconciler) askToMove(ctx context.Context, key []byte, addr string, m rebalanceMove, now time.Time) (string, error) {
	req, err := rebalance.New(m.Pod, m.Count, m.Rate, now)
	if err != nil {
		return resultUnreachable, err
	}
	ctx, cancel := context.WithTimeout(ctx, rebalanceSendTimeout)
	defer cancel()
	a, err := rebalance.Send(ctx, rebalanceClient(), "http://"+addr+rebalance.Path, key, req)
	switch {
	case err != nil:
		return resultUnreachable, err
	case a.Result != rebalance.ResultStarted:
		return a.Result, errors.New(a.Message)
	}
	return a.Result, nil
}

// statefulSetSettled: the StatefulSet controller reports every replica of spec.replicas
// created, ready and on the current revision: no rollout and no scaling under way.
func statefulSetSettled(sts *appsv1.StatefulSet, want int32) bool {
	if sts == nil || sts.Spec.Replicas == nil || *sts.Spec.Replicas != want {
		return false
	}
	s := sts.Status
	return s.ObservedGeneration == sts.Generation && s.Replicas == want && s.ReadyReplicas == want &&
		s.UpdatedReplicas == want && s.CurrentRevision == s.UpdateRevision
}
