package controllers

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// An owned object edited by hand is restored by the reconcile its own change triggers (the
// TCPGateway is untouched); `kubectl rollout restart`'s template annotation is left alone;
// once restored, a reconcile writes nothing.
func (e *env) testDrift(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	gw.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{Enabled: true}
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)
	e.waitGateway(t, key, hasCondition(v1alpha1.ConditionKafkaReady, "True", v1alpha1.ReasonTopicsReady))

	// First, so that the repairs below show they keep it.
	const restartedAt = annotationRestartedAt
	e.editOwned(t, ns, "chat", &appsv1.StatefulSet{}, func(o client.Object) {
		sts := o.(*appsv1.StatefulSet)
		sts.Spec.Template.Annotations[restartedAt] = "2026-01-01T00:00:00Z"
	})

	sts := func(o client.Object) any { return o.(*appsv1.StatefulSet).Spec }
	svc := func(o client.Object) any { return o.(*corev1.Service).Spec }
	tests := []struct {
		name, object string
		obj          client.Object
		edit         func(client.Object)
		owned        func(client.Object) any
	}{
		{"StatefulSet image", "chat", &appsv1.StatefulSet{}, func(o client.Object) {
			o.(*appsv1.StatefulSet).Spec.Template.Spec.Containers[0].Image = "attacker/gateway:latest"
		}, sts},
		{"StatefulSet replicas", "chat", &appsv1.StatefulSet{}, func(o client.Object) {
			o.(*appsv1.StatefulSet).Spec.Replicas = ptr.To[int32](7)
		}, sts},
		{"StatefulSet container added", "chat", &appsv1.StatefulSet{}, func(o client.Object) {
			p := &o.(*appsv1.StatefulSet).Spec.Template.Spec
			p.Containers = append(p.Containers, corev1.Container{Name: "sidecar", Image: "busybox"})
		}, sts},
		{"client Service port", "chat", &corev1.Service{}, func(o client.Object) {
			o.(*corev1.Service).Spec.Ports[0].Port = 7001
		}, svc},
		{"headless Service selector", "chat-headless", &corev1.Service{}, func(o client.Object) {
			o.(*corev1.Service).Spec.Selector = map[string]string{"app": "other"}
		}, svc},
		{"ConfigMap data", "chat-config", &corev1.ConfigMap{}, func(o client.Object) {
			o.(*corev1.ConfigMap).Data["gateway.yaml"] += "\n# edited\n"
		}, func(o client.Object) any { return o.(*corev1.ConfigMap).Data }},
		{"ConfigMap key added", "chat-config", &corev1.ConfigMap{}, func(o client.Object) {
			o.(*corev1.ConfigMap).Data["extra.yaml"] = "x: 1"
		}, func(o client.Object) any { return o.(*corev1.ConfigMap).Data }},
		{"PodDisruptionBudget maxUnavailable", "chat", &policyv1.PodDisruptionBudget{}, func(o client.Object) {
			o.(*policyv1.PodDisruptionBudget).Spec.MaxUnavailable = ptr.To(intstr.FromInt32(3))
		}, func(o client.Object) any { return o.(*policyv1.PodDisruptionBudget).Spec }},
		{"NetworkPolicy ingress opened", "chat", &networkingv1.NetworkPolicy{}, func(o client.Object) {
			o.(*networkingv1.NetworkPolicy).Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
		}, func(o client.Object) any { return o.(*networkingv1.NetworkPolicy).Spec }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.getOwned(t, ns, tt.object, tt.obj)
			want := tt.owned(tt.obj.DeepCopyObject().(client.Object))
			edited := e.editOwned(t, ns, tt.object, tt.obj, tt.edit)
			if equality.Semantic.DeepEqual(tt.owned(edited), want) {
				t.Fatal("the edit changed nothing")
			}
			eventually(t, waitTimeout, func() error {
				got := tt.obj.DeepCopyObject().(client.Object)
				e.getOwned(t, ns, tt.object, got)
				if !equality.Semantic.DeepEqual(tt.owned(got), want) {
					return fmt.Errorf("%T %s not restored", got, tt.object)
				}
				return nil
			})
		})
	}

	live := &appsv1.StatefulSet{}
	e.getOwned(t, ns, "chat", live)
	if _, ok := live.Spec.Template.Annotations[restartedAt]; !ok {
		t.Errorf("the rollout restart annotation was removed: %v", live.Spec.Template.Annotations)
	}

	// Restored: a reconcile finds everything in sync and writes nothing (no update loop on
	// the fields the API server defaults).
	c, err := client.NewWithWatch(e.cfg, client.Options{Scheme: e.scheme})
	if err != nil {
		t.Fatal(err)
	}
	var writes writeCounter
	r := e.reconciler(writes.wrap(c), events.NewFakeRecorder(100))
	if res, err := r.Reconcile(e.ctx(t), ctrl.Request{NamespacedName: key}); err != nil || res != (ctrl.Result{}) {
		t.Fatalf("reconcile = %+v, %v", res, err)
	}
	if n := writes.n.Load(); n != 0 {
		t.Errorf("a reconcile after the repairs made %d writes, want 0", n)
	}
}

// editOwned changes an owned object as kubectl edit would (an update of the whole object,
// retried on conflicts with the operator) and returns it as stored.
func (e *env) editOwned(t *testing.T, ns, name string, obj client.Object, edit func(client.Object)) client.Object {
	t.Helper()
	var out client.Object
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		o := obj.DeepCopyObject().(client.Object)
		if err := e.c.Get(e.ctx(t), types.NamespacedName{Namespace: ns, Name: name}, o); err != nil {
			return err
		}
		edit(o)
		out = o
		return e.c.Update(e.ctx(t), o)
	})
	if err != nil {
		t.Fatalf("edit %T %s: %v", obj, name, err)
	}
	return out
}
