package cluster

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// proxyPod is a pod of app=op serving port "custom-metrics" on 6443 at ip.
func proxyPod(name, ip string, ready, deleting bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "op"}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "c",
			Ports: []corev1.ContainerPort{{Name: "custom-metrics", ContainerPort: 6443}}}}},
		Status: corev1.PodStatus{PodIP: ip},
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	if deleting {
		p.DeletionTimestamp = &metav1.Time{}
	}
	return p
}

func proxyService(name, clusterIP string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, Selector: map[string]string{"app": "op"},
			Ports: []corev1.ServicePort{{Name: "custom-metrics", Port: 443, TargetPort: intstr.FromString("custom-metrics")}}},
	}
}

// A tunnel's target maps as kube-proxy would map it: a Service's cluster IP and port to a
// ready pod it selects, at the targetPort resolved on that pod; a loopback address (a pod's
// own) as it is; anything else is refused.
func TestServiceProxyResolve(t *testing.T) {
	svcs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, s := range []*corev1.Service{proxyService("op", "10.251.0.5"), proxyService("headless", corev1.ClusterIPNone)} {
		_ = svcs.Add(s)
	}
	for _, p := range []*corev1.Pod{
		proxyPod("ready", "127.0.10.7", true, false),
		proxyPod("unready", "127.0.10.8", false, false),
		proxyPod("deleting", "127.0.10.9", true, true),
	} {
		_ = pods.Add(p)
	}
	p := &ServiceProxy{svcs: corelisters.NewServiceLister(svcs), pods: corelisters.NewPodLister(pods)}
	for _, tc := range []struct{ target, want, err string }{
		{"10.251.0.5:443", "127.0.10.7:6443", ""},
		{"10.251.0.5:444", "", "no Service's cluster IP and port"},
		{"10.251.0.6:443", "", "no Service's cluster IP and port"},
		{"127.0.10.20:8080", "127.0.10.20:8080", ""},
		{"localhost:6443", "localhost:6443", ""},
		{"192.0.2.1:443", "", "no Service's cluster IP and port"},
		{"example.com:443", "", "not an IP address"},
		{"10.251.0.5", "", "missing port"},
	} {
		got, err := p.resolve(tc.target)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("resolve(%q) = %q, %v; want %q, error containing %q", tc.target, got, err, tc.want, tc.err)
		}
	}
	_ = pods.Delete(proxyPod("ready", "127.0.10.7", true, false))
	if got, err := p.resolve("10.251.0.5:443"); err == nil || !strings.Contains(err.Error(), "no ready pod") {
		t.Errorf("with no ready pod: resolve = %q, %v; want a 'no ready pod' error", got, err)
	}
}

// The slice the aggregator's availability check reads: the Service's port name with the
// resolved target port, one FQDN endpoint per ready pod, owned by and labelled for the
// Service; none without ready pods.
func TestEndpointSliceFor(t *testing.T) {
	svc := proxyService("op", "10.251.0.5")
	s := EndpointSliceFor(svc, []*corev1.Pod{proxyPod("op-1", "127.0.10.7", true, false), proxyPod("op-2", "127.0.10.8", true, false)})
	if s.Name != "op-local" || s.AddressType != discoveryv1.AddressTypeFQDN ||
		s.Labels[discoveryv1.LabelServiceName] != "op" || s.Labels[discoveryv1.LabelManagedBy] != EndpointSliceManager ||
		len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Name != "op" {
		t.Errorf("slice meta %+v, address type %s", s.ObjectMeta, s.AddressType)
	}
	if len(s.Ports) != 1 || *s.Ports[0].Name != "custom-metrics" || *s.Ports[0].Port != 6443 {
		t.Errorf("ports %+v", s.Ports)
	}
	if len(s.Endpoints) != 2 || s.Endpoints[0].Addresses[0] != "op-1.ns.pod.local" || !*s.Endpoints[1].Conditions.Ready {
		t.Errorf("endpoints %+v", s.Endpoints)
	}
	empty := EndpointSliceFor(svc, nil)
	if len(empty.Endpoints) != 0 || len(empty.Ports) != 0 {
		t.Errorf("no ready pod: %+v", empty)
	}
}
