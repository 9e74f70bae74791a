package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

func TestGatewayOfPod(t *testing.T) {
	gw := newGateway()
	pod := func(labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "chat-0", Namespace: "prod", Labels: labels}}
	}
	withLabel := func(k, v string) map[string]string { l := objectLabels(gw); l[k] = v; return l }
	tests := []struct {
		name string
		pod  *corev1.Pod
		want []reconcile.Request
	}{
		{"a gateway pod", pod(objectLabels(gw)), []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "prod", Name: "chat"}}}},
		{"another app", pod(withLabel(LabelName, "other")), nil},
		{"not the operator's", pod(withLabel(LabelManagedBy, "helm")), nil},
		{"no instance", pod(withLabel(LabelInstance, "")), nil},
		{"no labels", pod(nil), nil},
	}
	for _, tt := range tests {
		eq(t, tt.name, gatewayOfPod(context.Background(), tt.pod), tt.want)
	}
}

func TestPodFailureChanged(t *testing.T) {
	ok := gatewayPod("chat-0", running(true, 0, nil))
	notReady := gatewayPod("chat-0", running(false, 0, nil))
	crash4 := gatewayPod("chat-0", waiting("CrashLoopBackOff", "", 4, exited(1, "Error", "boom")))
	crash5 := gatewayPod("chat-0", waiting("CrashLoopBackOff", "", 5, exited(1, "Error", "boom")))
	deleting := *crash5.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{}
	updates := []struct {
		name     string
		old, new corev1.Pod
		want     bool
	}{
		{"readiness flip", ok, notReady, false},
		{"starts failing", notReady, crash4, true},
		{"one more restart", crash4, crash5, true},
		{"same failure (other status fields)", crash5, *crash5.DeepCopy(), false},
		{"recovers", crash5, ok, true},
		{"deletion starts", crash5, deleting, true},
	}
	for _, tt := range updates {
		if got := podFailureChanged.Update(event.UpdateEvent{ObjectOld: &tt.old, ObjectNew: &tt.new}); got != tt.want {
			t.Errorf("update %s: %v, want %v", tt.name, got, tt.want)
		}
	}
	eq(t, "create healthy", podFailureChanged.Create(event.CreateEvent{Object: &ok}), false)
	eq(t, "create failing", podFailureChanged.Create(event.CreateEvent{Object: &crash4}), true)
	eq(t, "delete", podFailureChanged.Delete(event.DeleteEvent{Object: &ok}), true)
}

// Pods that crash-loop make the TCPGateway Degraded=PodsFailing, and recovering clears it,
// through the pod watch alone: the test plays the StatefulSet controller (it creates the
// pods) and the kubelet (it writes their status), which envtest does not run, and changes
// nothing else.
func (e *env) testPodsFailing(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)
	e.waitGateway(t, key, hasCondition(v1alpha1.ConditionDegraded, "False", v1alpha1.ReasonAsExpected))
	sts := &appsv1.StatefulSet{}
	e.getOwned(t, ns, "chat", sts)

	// The pods as the StatefulSet controller makes them: the template's labels, controlled by
	// the StatefulSet. A pod with the same labels that the StatefulSet does not control is
	// not counted.
	ctx := e.ctx(t)
	if err := e.c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	newPod := func(name string, controlled bool) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: sts.Spec.Template.Labels},
			Spec:       sts.Spec.Template.Spec,
		}
		if controlled {
			p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(sts, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))}
		}
		if err := e.c.Create(ctx, p); err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
		return p
	}
	// setStatus plays the kubelet.
	setStatus := func(p *corev1.Pod, cs corev1.ContainerStatus) {
		t.Helper()
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := e.c.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
				return err
			}
			cs.Name, cs.Image = ContainerName, p.Spec.Containers[0].Image
			p.Status.Phase = corev1.PodRunning
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
			return e.c.Status().Update(ctx, p)
		})
		if err != nil {
			t.Fatalf("pod %s status: %v", p.Name, err)
		}
	}
	crash := func(restarts int32) corev1.ContainerStatus {
		return waiting("CrashLoopBackOff", "back-off 40s restarting failed container=gateway", restarts,
			&corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: shortKeyError,
				StartedAt: metav1.Now(), FinishedAt: metav1.Now()})
	}
	stray := newPod("chat-stray", false)
	setStatus(stray, crash(9))
	pod0, pod1 := newPod("chat-0", true), newPod("chat-1", true)
	setStatus(pod0, running(true, 0, nil))
	setStatus(pod1, crash(4))

	degradedWith := func(want string) func(*v1alpha1.TCPGateway) error {
		return func(gw *v1alpha1.TCPGateway) error {
			if err := hasCondition(v1alpha1.ConditionDegraded, "True", v1alpha1.ReasonPodsFailing)(gw); err != nil {
				return err
			}
			if c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionDegraded); !strings.Contains(c.Message, want) {
				return fmt.Errorf("Degraded message %q does not contain %q", c.Message, want)
			}
			return nil
		}
	}
	gw = e.waitGateway(t, key, degradedWith("1 of 2 pods failing: chat-1 CrashLoopBackOff (exit 1, 4 restarts): "+
		"gateway: while setting up auth: auth: hs256SecretFile: while parsing key file /etc/tcpgateway/keys/hs256.secret: "+
		"HS256 secret is 5 bytes, need at least 32 (RFC 7518 §3.2)"))
	if c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionDegraded); strings.Contains(c.Message, "stray") {
		t.Errorf("a pod the StatefulSet does not control is reported: %q", c.Message)
	}
	eventually(t, waitTimeout, func() error {
		for _, r := range e.warningEvents(t, ns) {
			if r == v1alpha1.ReasonPodsFailing {
				return nil
			}
		}
		return errors.New("no PodsFailing Warning Event")
	})

	// Another restart: the condition follows the pod.
	setStatus(pod1, crash(5))
	e.waitGateway(t, key, degradedWith("chat-1 CrashLoopBackOff (exit 1, 5 restarts)"))

	// Recovered: running and ready after its restart.
	setStatus(pod1, running(true, 6, exited(1, "Error", shortKeyError)))
	e.waitGateway(t, key, hasCondition(v1alpha1.ConditionDegraded, "False", v1alpha1.ReasonAsExpected))

	// A pod that cannot start its container at all.
	setStatus(pod0, waiting("CreateContainerConfigError", `couldn't find key hs256.secret in Secret `+ns+`/chat-jwt`, 0, nil))
	e.waitGateway(t, key, degradedWith("1 of 2 pods failing: chat-0 CreateContainerConfigError: couldn't find key hs256.secret"))
}
