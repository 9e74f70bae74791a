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

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/controllers"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/test/cluster"
	"github.com/tcpgateway/tcpgateway/test/traffic"
)

// Traffic while pods are replaced: clients through the LB (20 of them also sending echo
// requests), and pushes to users, groups and everyone. The size is CI's unless the knobs
// (rollout_knobs_test.go) say otherwise.
const (
	trafficClients  = 60
	trafficTalkers  = 20
	trafficRate     = 100 // records/s
	talkEvery       = 200 * time.Millisecond
	settleTimeout   = 30 * time.Second // for the last records to arrive after the producer stops
	rolloutTimeout  = 4 * time.Minute
	trafficFlowing  = 30 * time.Second // for every client's first push
	scaleOutReplica = 5
	scaleInReplica  = 2
)

// Rolling updates under continuous traffic, one after the other: new image tags and
// configuration changes (which roll the pods through the config hash on their template) in
// turn, TCPGW_E2E_ROLLOUTS of them (default 5; the long proof runs 20). Every pod of every
// update is replaced through its preStop drain: none SIGKILLed, none exits non-zero, every
// push arrives once, every request is answered.
func TestRollingUpdateUnderTrafficLosesNothing(t *testing.T) {
	s := shared(t)
	k := rolloutKnobs(t)
	const ns, name = "e2e-rollout", "chat"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute+time.Duration(k.rollouts)*time.Minute)
	defer cancel()
	gw, addr := s.apply(ctx, t, ns, name, s.gatewaySpec(3))
	pods := s.waitPods(ctx, t, ns, "3 ready pods", func(pods map[string]*corev1.Pod) bool { return countReady(pods) == 3 })
	run := startTrafficSized(t, s, gw, addr, ns, k.clients, k.rate)

	t0 := time.Now()
	replaced := map[types.UID]bool{}
	var took []time.Duration
	for i := range k.rollouts {
		step := rolloutStep(i)
		start := time.Now()
		old := uids(pods)
		sample := pods["chat-0"]
		s.patchGateway(ctx, t, ns, name, step.change)
		pods = s.waitPods(ctx, t, ns, fmt.Sprintf("every pod replaced and ready after update %d (%s)", i+1, step.what), func(pods map[string]*corev1.Pod) bool {
			for _, p := range pods {
				if old[p.UID] || !isReady(p) || !step.rolled(sample, p) {
					return false
				}
			}
			return len(pods) == 3
		})
		s.waitStatefulSetSettled(ctx, t, ns, name, 3)
		maps.Copy(replaced, old)
		took = append(took, time.Since(start))
		t.Logf("rolling update %d/%d (%s) done in %v: %s", i+1, k.rollouts, step.what, time.Since(start).Round(time.Millisecond), podList(pods))
	}
	elapsed := time.Since(t0)

	ps, deliveries := run.finish(t, t0)
	terms := s.terminations(ns)
	if ended := termUIDs(terms); !maps.Equal(ended, replaced) {
		t.Errorf("terminated pods %v, want exactly the %d replaced ones %v", ended, len(replaced), replaced)
	}
	checkGraceful(t, terms)
	killed, nonZero := 0, 0
	for _, tm := range terms {
		if tm.GraceKilled {
			killed++
		}
		if tm.ExitCode != 0 {
			nonZero++
		}
	}
	mv := traffic.CheckMoves(run.fleet.Clients, "", t0)
	if len(mv.NotBack) > 0 {
		t.Errorf("%d clients never reconnected although every pod was replaced, e.g. %s", len(mv.NotBack), mv.NotBack[0])
	}
	if len(mv.ResumeBad) > 0 {
		t.Errorf("%d reconnects did not resume completely, e.g. %s", len(mv.ResumeBad), strings.Join(mv.ResumeBad[:min(3, len(mv.ResumeBad))], "; "))
	}
	lost, dups := 0, 0
	for _, ac := range run.fleet.Clients {
		n, _ := ac.Missing(run.producer, t0, 0, time.Time{})
		lost += n
		dups += ac.Duplicates()
	}
	slices.Sort(took)
	t.Logf("FIGURES rollouts: %d rolling updates of 3 pods in %v (each: min %v, median %v, max %v); %d pods terminated, %d SIGKILLed, %d exited non-zero; "+
		"%d clients, %d records accepted (%.0f/s offered), %d deliveries, %d lost, %d duplicates; %d handshakes after t0, at most %d in one second",
		k.rollouts, elapsed.Round(time.Second), took[0].Round(100*time.Millisecond), took[len(took)/2].Round(100*time.Millisecond),
		took[len(took)-1].Round(100*time.Millisecond), len(terms), killed, nonZero,
		k.clients, ps.Accepted, ps.Rate, deliveries, lost, dups, handshakesAfter(run.fleet, t0), mv.MaxPerSecond)
}

// rolloutStep is the i-th change of TestRollingUpdateUnderTrafficLosesNothing: even steps a
// new image tag, odd ones a new route timeout (a configuration change), each value new, so
// that every step rolls every pod.
func rolloutStep(i int) (step struct {
	what   string
	change func(*v1alpha1.TCPGatewaySpec)
	rolled func(old, new *corev1.Pod) bool
}) {
	if i%2 == 0 {
		tag := fmt.Sprintf("%s-v%d", image, i/2+2)
		step.what = "image tag " + tag
		step.change = func(spec *v1alpha1.TCPGatewaySpec) { spec.Image = tag }
		step.rolled = func(_, p *corev1.Pod) bool { return p.Spec.Containers[0].Image == tag }
		return step
	}
	timeout := fmt.Sprintf("%ds", 6+i/2)
	step.what = "configuration (route timeout " + timeout + ")"
	step.change = func(spec *v1alpha1.TCPGatewaySpec) { spec.Routes[0].Timeout = v1alpha1.Duration(timeout) }
	step.rolled = func(old, p *corev1.Pod) bool {
		return p.Annotations[controllers.AnnotationConfigHash] != old.Annotations[controllers.AnnotationConfigHash]
	}
	return step
}

// handshakesAfter counts the fleet's handshakes after t0.
func handshakesAfter(f *traffic.Fleet, t0 time.Time) int {
	n := 0
	for _, ac := range f.Clients {
		conns, _ := ac.Events()
		for _, c := range conns {
			if c.At.After(t0) {
				n++
			}
		}
	}
	return n
}

// Issue item 3: scale 3 → 5 → 2 under traffic. The three pods removed by the scale-in drain
// with the same guarantees as a rolling update; their clients end up on the two that stay.
func TestScaleOutThenInLosesNothing(t *testing.T) {
	s := shared(t)
	const ns, name = "e2e-scale", "chat"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	gw, addr := s.apply(ctx, t, ns, name, s.gatewaySpec(3))
	s.waitPods(ctx, t, ns, "3 ready pods", func(pods map[string]*corev1.Pod) bool { return countReady(pods) == 3 })
	run := startTraffic(t, s, gw, addr, ns)

	t0 := time.Now()
	s.patchGateway(ctx, t, ns, name, func(spec *v1alpha1.TCPGatewaySpec) { spec.Replicas = new(int32(scaleOutReplica)) })
	out := s.waitPods(ctx, t, ns, "5 ready pods", func(pods map[string]*corev1.Pod) bool { return countReady(pods) == scaleOutReplica })
	s.waitStatefulSetSettled(ctx, t, ns, name, scaleOutReplica)
	t.Logf("scaled out to %d in %v: %s", scaleOutReplica, time.Since(t0).Round(time.Millisecond), podList(out))
	if terms := s.terminations(ns); len(terms) != 0 {
		t.Errorf("scaling out terminated pods: %+v", terms)
	}

	t1 := time.Now()
	s.patchGateway(ctx, t, ns, name, func(spec *v1alpha1.TCPGatewaySpec) { spec.Replicas = new(int32(scaleInReplica)) })
	in := s.waitPods(ctx, t, ns, "chat-0 and chat-1 only", func(pods map[string]*corev1.Pod) bool {
		return len(pods) == scaleInReplica && countReady(pods) == scaleInReplica && pods["chat-0"] != nil && pods["chat-1"] != nil
	})
	s.waitStatefulSetSettled(ctx, t, ns, name, scaleInReplica)
	t.Logf("scaled in to %d in %v: %s", scaleInReplica, time.Since(t1).Round(time.Millisecond), podList(in))

	run.finish(t, t0)
	terms := s.terminations(ns)
	var ended []string
	for _, tm := range terms {
		ended = append(ended, tm.Name)
		if out[tm.Name] == nil || out[tm.Name].UID != tm.UID {
			t.Errorf("terminated %s (%s), which is not a pod the scale-out left", tm.Name, tm.UID)
		}
	}
	slices.Sort(ended)
	if want := []string{"chat-2", "chat-3", "chat-4"}; !slices.Equal(ended, want) {
		t.Errorf("terminated %v, want %v", ended, want)
	}
	checkGraceful(t, terms)
	for _, ac := range run.fleet.Clients {
		if srv := ac.Server(); srv != "chat-0" && srv != "chat-1" {
			conns, discs := ac.Events()
			t.Errorf("client %d is on %q after the scale-in: %s", ac.Index, srv, traffic.History(conns, discs, t0))
		}
	}
	mv := traffic.CheckMoves(run.fleet.Clients, "", t1)
	if len(mv.ResumeBad) > 0 {
		t.Errorf("%d reconnects did not resume completely, e.g. %s", len(mv.ResumeBad), strings.Join(mv.ResumeBad[:min(3, len(mv.ResumeBad))], "; "))
	}
	t.Logf("clients moved by the scale-in: %d, last back %v after it began", len(mv.Reconnects), mv.Last().Round(time.Millisecond))
}

// trafficRun is the traffic of one test.
type trafficRun struct {
	fleet    *traffic.Fleet
	producer *traffic.Producer
	talkers  *traffic.Talkers
}

// startTraffic connects the fleet through the LB, starts pushes and requests, and waits until
// every client has received a push.
func startTraffic(t *testing.T, s *system, gw *v1alpha1.TCPGateway, addr, ns string) *trafficRun {
	t.Helper()
	return startTrafficSized(t, s, gw, addr, ns, trafficClients, trafficRate)
}

// startTrafficSized is startTraffic with clients and records/s of the caller's choosing.
func startTrafficSized(t *testing.T, s *system, gw *v1alpha1.TCPGateway, addr, ns string, clients int, rate float64) *trafficRun {
	t.Helper()
	s.awaitTopic(t, gw.Status.Kafka.DownlinkTopic)
	f := traffic.Connect(t, traffic.FleetOptions{Addr: addr, Clients: clients, Tag: "e2e",
		Token: func(user string, groups []string) string { return token(t, user, groups) }})
	p := traffic.StartProducer(t, traffic.ProducerOptions{Brokers: []string{s.brokers},
		Topic: gw.Status.Kafka.DownlinkTopic, Rate: rate, Users: clients})
	tk := traffic.StartTalkers(t, f.Clients[:min(trafficTalkers, clients)], talkEvery)
	if !f.WaitUntil(trafficFlowing, func() bool {
		for _, ac := range f.Clients {
			if ac.Deliveries() == 0 {
				return false
			}
		}
		return true
	}) {
		s.dumpPods(t, ns)
		t.Fatalf("not every client received a push within %v", trafficFlowing)
	}
	servers := map[string]int{}
	for _, ac := range f.Clients {
		servers[ac.Server()]++
	}
	t.Logf("traffic flowing: %d clients (per pod %v), %.0f records/s, %d talkers", clients, servers, rate, min(trafficTalkers, clients))
	return &trafficRun{fleet: f, producer: p, talkers: tk}
}

// finish stops the traffic and checks it: every record Kafka accepted reached every client it
// targets exactly once and in order; every request was answered by the backend.
func (r *trafficRun) finish(t *testing.T, t0 time.Time) (traffic.ProducerStats, int) {
	t.Helper()
	r.talkers.Halt()
	r.producer.Halt()
	_, complete := traffic.WaitComplete(r.fleet, r.producer, settleTimeout)
	if !complete {
		t.Errorf("records still missing %v after the producer stopped", settleTimeout)
	}
	ps := r.producer.Stats()
	if ps.Failed > 0 {
		t.Errorf("%d pushes failed, first: %v", ps.Failed, ps.FirstErr)
	}
	if ps.Accepted == 0 {
		t.Fatal("Kafka accepted no record")
	}
	deliveries := traffic.CheckRecords(t, r.fleet, r.producer, t0)
	answered := r.talkers.Check(t, t0)
	t.Logf("%d records accepted (%.0f/s offered), %d deliveries to apps, %d requests answered", ps.Accepted, ps.Rate, deliveries, answered)
	return ps, deliveries
}

// awaitTopic waits until a producer can write to a topic the operator just created: a Kafka
// client's first metadata for a brand-new topic may not list it yet ("Unknown Topic Or
// Partition"). The probe goes to a user nobody is.
func (s *system) awaitTopic(t *testing.T, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	pub, err := push.New(ctx, push.Options{Brokers: []string{s.brokers}, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var last error
	if _, ok := poll(ctx, pushTimeout, func(ctx context.Context) bool {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		defer pcancel()
		_, last = pub.Push(pctx, push.Message{Target: push.User("nobody"), Payload: []byte("probe")})
		return last == nil
	}); !ok {
		t.Fatalf("cannot push to %s within %v: %v", topic, pushTimeout, last)
	}
}

// patchGateway changes a TCPGateway's spec (merge patch).
func (s *system) patchGateway(ctx context.Context, t *testing.T, ns, name string, change func(*v1alpha1.TCPGatewaySpec)) {
	t.Helper()
	gw := &v1alpha1.TCPGateway{}
	if err := s.k.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: name}, gw); err != nil {
		t.Fatal(err)
	}
	base := gw.DeepCopy()
	change(&gw.Spec)
	if err := s.k.Patch(ctx, gw, crclient.MergeFrom(base)); err != nil {
		t.Fatalf("patching %s/%s: %v", ns, name, err)
	}
}

// waitPods waits until the pods of ns (those not being deleted) satisfy cond and returns them.
func (s *system) waitPods(ctx context.Context, t *testing.T, ns, what string, cond func(map[string]*corev1.Pod) bool) map[string]*corev1.Pod {
	t.Helper()
	return s.waitPodsWithin(ctx, t, ns, what, rolloutTimeout, cond)
}

// waitPodsWithin is waitPods failing the test after within.
func (s *system) waitPodsWithin(ctx context.Context, t *testing.T, ns, what string, within time.Duration, cond func(map[string]*corev1.Pod) bool) map[string]*corev1.Pod {
	t.Helper()
	var pods map[string]*corev1.Pod
	took, ok := poll(ctx, within, func(ctx context.Context) bool {
		var list corev1.PodList
		if err := s.k.List(ctx, &list, crclient.InNamespace(ns)); err != nil {
			return false
		}
		pods = map[string]*corev1.Pod{}
		for i := range list.Items {
			if p := &list.Items[i]; p.DeletionTimestamp == nil {
				pods[p.Name] = p
			}
		}
		return cond(pods)
	})
	if !ok {
		s.dumpPods(t, ns)
		t.Fatalf("no %s after %v: %s", what, took.Round(time.Millisecond), podList(pods))
	}
	return pods
}

// waitStatefulSetSettled waits until the StatefulSet controller reports every replica
// updated, ready and on the current revision.
func (s *system) waitStatefulSetSettled(ctx context.Context, t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	sts := &appsv1.StatefulSet{}
	if _, ok := poll(ctx, rolloutTimeout, func(ctx context.Context) bool {
		if err := s.k.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: name}, sts); err != nil {
			return false
		}
		st := sts.Status
		return st.ObservedGeneration == sts.Generation && st.Replicas == replicas && st.ReadyReplicas == replicas &&
			st.UpdatedReplicas == replicas && st.CurrentRevision == st.UpdateRevision
	}); !ok {
		t.Fatalf("StatefulSet %s/%s not settled at %d replicas: %+v", ns, name, replicas, sts.Status)
	}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func countReady(pods map[string]*corev1.Pod) int {
	n := 0
	for _, p := range pods {
		if isReady(p) {
			n++
		}
	}
	return n
}

func uids(pods map[string]*corev1.Pod) map[types.UID]bool {
	out := map[types.UID]bool{}
	for _, p := range pods {
		out[p.UID] = true
	}
	return out
}

func termUIDs(terms []cluster.Termination) map[types.UID]bool {
	out := map[types.UID]bool{}
	for _, tm := range terms {
		out[tm.UID] = true
	}
	return out
}

// podList renders pods as "name(ip,ready)" in name order.
func podList(pods map[string]*corev1.Pod) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(pods)) {
		p := pods[name]
		state := "not ready"
		if isReady(p) {
			state = "ready"
		}
		parts = append(parts, name+"("+p.Status.PodIP+","+state+")")
	}
	return strings.Join(parts, " ")
}
