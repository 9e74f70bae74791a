package controllers

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// spec.autoscaling: an owned HorizontalPodAutoscaler on the TCPGateway's scale subresource;
// a second reconcile writes nothing (the API server's defaults in the autoscaler's behavior
// are not drift); the autoscaler's scale reaches the StatefulSet and is never undone; a hand
// edit of the autoscaler is; removing spec.autoscaling deletes it and keeps the replicas.
func (e *env) testAutoscaler(t *testing.T) {
	ns := e.namespace(t)
	gw := e.gateway(ns)
	gw.Spec.Autoscaling = &v1alpha1.Autoscaling{MaxReplicas: 6, TargetConnectionsPerPod: 500, ScaleDownStabilizationSeconds: ptr.To[int32](60)}
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)
	hpaKey := types.NamespacedName{Namespace: ns, Name: "chat"}

	live, err := client.NewWithWatch(e.cfg, client.Options{Scheme: e.scheme})
	if err != nil {
		t.Fatal(err)
	}
	var writes writeCounter
	r := e.reconciler(writes.wrap(live), events.NewFakeRecorder(100))
	req := ctrl.Request{NamespacedName: key}
	for _, want := range []int64{7, 0} { // ConfigMap, 2 Services, StatefulSet, PDB, HPA, status; then nothing
		writes.n.Store(0)
		if _, err := r.Reconcile(e.ctx(t), req); err != nil {
			t.Fatal(err)
		}
		if n := writes.n.Load(); n != want {
			t.Errorf("reconcile made %d writes, want %d", n, want)
		}
	}

	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	e.getOwned(t, ns, "chat", hpa)
	if err := e.c.Get(e.ctx(t), key, gw); err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(hpa); ref == nil || ref.UID != gw.UID || ref.Kind != "TCPGateway" {
		t.Errorf("controller reference %+v, want TCPGateway %s", ref, gw.UID)
	}
	eq(t, "target", hpa.Spec.ScaleTargetRef, autoscalingv2.CrossVersionObjectReference{APIVersion: "tcpgateway.io/v1alpha1", Kind: "TCPGateway", Name: "chat"})
	eq(t, "bounds", []int32{*hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas}, []int32{2, 6}) // minReplicas: the schema default
	eq(t, "metric", hpa.Spec.Metrics[0].Pods.Metric.Name, "tcpgw_sessions")
	eq(t, "target average", hpa.Spec.Metrics[0].Pods.Target.AverageValue.Value(), int64(500))
	eq(t, "scale-down window", *hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds, int32(60))
	// The pods' grace period from the schema's drain defaults: hardDeadline 45s + 10s margin.
	eq(t, "scale-down pace", hpa.Spec.Behavior.ScaleDown.Policies, []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 55}})
	if hpa.Spec.Behavior.ScaleUp == nil {
		t.Error("the API server filled in no scale-up rules; the no-write reconcile above did not see its defaults")
	}

	e.startManager(t, ns)
	// What the HPA controller does: write the scale subresource. The StatefulSet follows and
	// the autoscaler is left as it is.
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 5}}
	if err := e.c.SubResource("scale").Update(e.ctx(t), gw, client.WithSubResourceBody(scale)); err != nil {
		t.Fatalf("scale: %v", err)
	}
	eventually(t, waitTimeout, func() error {
		sts := &appsv1.StatefulSet{}
		if err := e.c.Get(e.ctx(t), key, sts); err != nil {
			return err
		}
		if *sts.Spec.Replicas != 5 {
			return fmt.Errorf("StatefulSet replicas %d", *sts.Spec.Replicas)
		}
		return nil
	})
	e.waitGateway(t, key, settled)
	before := hpa.ResourceVersion
	e.getOwned(t, ns, "chat", hpa)
	eq(t, "autoscaler untouched by the scale", hpa.ResourceVersion, before)

	e.editOwned(t, ns, "chat", &autoscalingv2.HorizontalPodAutoscaler{}, func(o client.Object) {
		h := o.(*autoscalingv2.HorizontalPodAutoscaler)
		h.Spec.MaxReplicas = 100
		h.Spec.Metrics[0].Pods.Target.AverageValue = ptr.To(resource.MustParse("1"))
	})
	eventually(t, waitTimeout, func() error {
		if err := e.c.Get(e.ctx(t), hpaKey, hpa); err != nil {
			return err
		}
		if hpa.Spec.MaxReplicas != 6 || hpa.Spec.Metrics[0].Pods.Target.AverageValue.Value() != 500 {
			return fmt.Errorf("autoscaler not restored: max %d, target %v", hpa.Spec.MaxReplicas, hpa.Spec.Metrics[0].Pods.Target.AverageValue)
		}
		return nil
	})

	e.update(t, key, func(gw *v1alpha1.TCPGateway) { gw.Spec.Autoscaling.TargetConnectionsPerPod = 800 })
	eventually(t, waitTimeout, func() error {
		if err := e.c.Get(e.ctx(t), hpaKey, hpa); err != nil {
			return err
		}
		if got := hpa.Spec.Metrics[0].Pods.Target.AverageValue.Value(); got != 800 {
			return fmt.Errorf("target %d", got)
		}
		return nil
	})

	e.update(t, key, func(gw *v1alpha1.TCPGateway) { gw.Spec.Autoscaling = nil })
	eventually(t, waitTimeout, func() error {
		if err := e.c.Get(e.ctx(t), hpaKey, &autoscalingv2.HorizontalPodAutoscaler{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("autoscaler still there after spec.autoscaling was removed (%v)", err)
		}
		return nil
	})
	gw = e.waitGateway(t, key, settled)
	eq(t, "replicas where the autoscaler left them", *gw.Spec.Replicas, int32(5))
}
