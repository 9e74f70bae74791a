package custommetrics

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/tcpgateway/tcpgateway/controllers/sessioncount"
)

var at = time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)

func TestValues(t *testing.T) {
	counts := []sessioncount.Count{
		{Pod: "chat-0", Sample: sessioncount.Sample{Sessions: 120}, At: at},
		{Pod: "chat-1", At: at, Err: &sessioncount.Error{Reason: sessioncount.Timeout, Err: errors.New("slow")}},
		{Pod: "chat-2", Sample: sessioncount.Sample{Sessions: 0}, At: at},
	}
	got := Values("prod", counts, labels.Everything())
	if len(got) != 2 {
		t.Fatalf("%d values, want 2 (the failed read has none): %+v", len(got), got)
	}
	for i, want := range []struct {
		pod string
		n   int64
	}{{"chat-0", 120}, {"chat-2", 0}} {
		v := got[i]
		if v.DescribedObject.Kind != "Pod" || v.DescribedObject.APIVersion != "v1" || v.DescribedObject.Namespace != "prod" ||
			v.DescribedObject.Name != want.pod || v.Metric.Name != "tcpgw_sessions" || v.Value.Value() != want.n || !v.Timestamp.Time.Equal(at) {
			t.Errorf("value %d = %+v, want %s=%d", i, v, want.pod, want.n)
		}
	}
	if got := Values("prod", counts, labels.SelectorFromSet(labels.Set{"le": "1"})); len(got) != 0 {
		t.Errorf("a metric selector naming a label the metric does not have selected %d values", len(got))
	}
	sel, err := labels.Parse("shard!=a")
	if err != nil {
		t.Fatal(err)
	}
	if got := Values("prod", counts, sel); len(got) != 2 {
		t.Errorf("a selector the empty label set satisfies selected %d values, want 2", len(got))
	}
}

// fakeCounter answers from a table and records which pods it was asked to read.
type fakeCounter struct {
	sessions map[string]int64
	asked    []string
}

func (f *fakeCounter) Read(_ context.Context, targets []sessioncount.Target) []sessioncount.Count {
	var out []sessioncount.Count
	for _, tg := range targets {
		f.asked = append(f.asked, tg.Pod)
		n, ok := f.sessions[tg.Pod]
		c := sessioncount.Count{Pod: tg.Pod, Sample: sessioncount.Sample{Sessions: n}, At: at}
		if !ok {
			c.Err = &sessioncount.Error{Reason: sessioncount.Unreachable, Err: errors.New("refused")}
		}
		out = append(out, c)
	}
	return out
}

func pod(ns, name string, lbls map[string]string, ready bool) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "gateway",
			Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 9090}}}}},
		Status: corev1.PodStatus{PodIP: "127.0.10.1", Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
}

func TestProvider(t *testing.T) {
	chat := map[string]string{"app.kubernetes.io/instance": "chat"}
	other := map[string]string{"app.kubernetes.io/instance": "other"}
	c := fake.NewClientBuilder().WithObjects(
		pod("prod", "chat-0", chat, true), pod("prod", "chat-1", chat, true), pod("prod", "chat-2", chat, false),
		pod("prod", "other-0", other, true), pod("staging", "chat-0", chat, true),
	).Build()
	counter := &fakeCounter{sessions: map[string]int64{"chat-0": 30, "chat-1": 50, "other-0": 7}}
	p := &Provider{Pods: c, Counter: counter, PortName: "admin"}
	ctx := context.Background()
	info := p.ListAllMetrics()[0]
	if info != (provider.CustomMetricInfo{GroupResource: schema.GroupResource{Resource: "pods"}, Namespaced: true, Metric: "tcpgw_sessions"}) {
		t.Fatalf("metrics listed: %+v", p.ListAllMetrics())
	}

	list, err := p.GetMetricBySelector(ctx, "prod", labels.SelectorFromSet(chat), info, labels.Everything())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, v := range list.Items {
		got[v.DescribedObject.Name] = v.Value.Value()
	}
	// chat-2 is not ready (not read); other-0 and staging's pod are not selected.
	if len(got) != 2 || got["chat-0"] != 30 || got["chat-1"] != 50 {
		t.Errorf("values %v, want chat-0=30 chat-1=50", got)
	}
	if len(counter.asked) != 2 {
		t.Errorf("pods read %v, want the two ready selected ones", counter.asked)
	}

	v, err := p.GetMetricByName(ctx, types.NamespacedName{Namespace: "prod", Name: "chat-1"}, info, labels.Everything())
	if err != nil || v.Value.Value() != 50 {
		t.Errorf("chat-1 = %+v, %v", v, err)
	}
	for _, name := range []string{"chat-2", "nope"} { // not ready; no such pod
		if _, err := p.GetMetricByName(ctx, types.NamespacedName{Namespace: "prod", Name: name}, info, labels.Everything()); !apierrors.IsNotFound(err) {
			t.Errorf("%s: %v, want NotFound", name, err)
		}
	}
	for _, bad := range []provider.CustomMetricInfo{
		{GroupResource: schema.GroupResource{Resource: "pods"}, Namespaced: true, Metric: "tcpgw_connections"},
		{GroupResource: schema.GroupResource{Resource: "services"}, Namespaced: true, Metric: "tcpgw_sessions"},
		{GroupResource: schema.GroupResource{Resource: "pods"}, Metric: "tcpgw_sessions"},
	} {
		if _, err := p.GetMetricBySelector(ctx, "prod", labels.Everything(), bad, labels.Everything()); !apierrors.IsNotFound(err) {
			t.Errorf("%+v: %v, want NotFound", bad, err)
		}
	}
}
