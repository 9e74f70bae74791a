package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

func TestLeaseHeld(t *testing.T) {
	now := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	lease := func(holder string, acquiredAgo, renewedAgo time.Duration) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: "tcpgateway.io"},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(holder),
				LeaseDurationSeconds: ptr.To[int32](15),
				AcquireTime:          &metav1.MicroTime{Time: now.Add(-acquiredAgo)},
				RenewTime:            &metav1.MicroTime{Time: now.Add(-renewedAgo)},
			},
		}
	}
	const window, settle = time.Second, 3 * time.Second
	tests := []struct {
		name     string
		lease    *coordinationv1.Lease
		wantWait time.Duration
		wantErr  bool
	}{
		{"held, renewed, settled", lease("me", time.Minute, time.Second), 0, false},
		{"held by another", lease("other", time.Minute, time.Second), 0, true},
		{"released (no holder)", &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{}}, 0, true},
		{"held but expired", lease("me", time.Minute, 15*time.Second), 0, true},
		{"held but expires within the window", lease("me", time.Minute, 14500*time.Millisecond), 0, true},
		{"just acquired: wait out the settle time", lease("me", time.Second, time.Second), 2 * time.Second, false},
		{"no acquire time", func() *coordinationv1.Lease { l := lease("me", 0, 0); l.Spec.AcquireTime = nil; return l }(), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wait, err := leaseHeld(tt.lease, "me", now, window, settle)
			if (err != nil) != tt.wantErr || wait != tt.wantWait {
				t.Fatalf("leaseHeld = %v, %v; want wait %v, error %v", wait, err, tt.wantWait, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrNotLeader) {
				t.Errorf("error %v is not ErrNotLeader", err)
			}
		})
	}
}

// The fenced client against the real API server: writes refused while another process holds
// the Lease (or no one does), held back for the settle time of a fresh Lease, let through
// once it has settled.
func (e *env) testLeaderFence(t *testing.T) {
	ns := e.namespace(t)
	ctx := e.ctx(t)
	c, err := client.NewWithWatch(e.cfg, client.Options{Scheme: e.scheme})
	if err != nil {
		t.Fatal(err)
	}
	const settle = 700 * time.Millisecond
	f := &LeaderFence{Reader: e.c, Lease: client.ObjectKey{Namespace: ns, Name: "tcpgateway.io"}, Identity: "me",
		Window: 200 * time.Millisecond, Settle: settle}
	fenced := f.Client(c)
	create := func(name string) error {
		return fenced.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	}
	exists := func(name string) bool {
		err := e.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}

	refused := testutil.ToFloat64(writesRefused.WithLabelValues(refusedNotLeader))
	if err := create("no-lease"); !errors.Is(err, ErrNotLeader) || exists("no-lease") {
		t.Errorf("without a Lease: %v, want ErrNotLeader and nothing written", err)
	}
	now := time.Now()
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tcpgateway.io"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("other"), LeaseDurationSeconds: ptr.To[int32](15),
			AcquireTime: &metav1.MicroTime{Time: now}, RenewTime: &metav1.MicroTime{Time: now}},
	}
	if err := e.c.Create(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if err := create("other-leads"); !errors.Is(err, ErrNotLeader) || exists("other-leads") {
		t.Errorf("Lease held by another: %v, want ErrNotLeader and nothing written", err)
	}

	if got := testutil.ToFloat64(writesRefused.WithLabelValues(refusedNotLeader)) - refused; got != 2 {
		t.Errorf("tcpgw_operator_writes_refused_total{reason=not_leader} grew by %v, want 2", got)
	}

	// Taken over just now: the first write waits out the settle time.
	now = time.Now()
	lease.Spec.HolderIdentity = ptr.To("me")
	lease.Spec.AcquireTime, lease.Spec.RenewTime = &metav1.MicroTime{Time: now}, &metav1.MicroTime{Time: now}
	if err := e.c.Update(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if err := create("after-settle"); err != nil {
		t.Fatalf("held: %v", err)
	}
	if took := time.Since(now); took < settle {
		t.Errorf("the write after the takeover went through after %v, before the settle time %v", took, settle)
	}
	if !exists("after-settle") {
		t.Error("the write was not made")
	}
	if err := create("settled"); err != nil || !exists("settled") {
		t.Errorf("held and settled: %v", err)
	}
}

// A patch computed from a stale read (a cache behind the API server, or a deposed leader's) is
// refused by the API server: the reconciler's Get returns the StatefulSet as it was before a
// user edited it, and the TCPGateway's image changed, so the reconciler patches it; the
// reconcile ends on a conflict, overwrites nothing, leaves the status alone, and counts the
// conflict. The next reconcile, from the current object, applies the change.
func (e *env) testStaleWriteRefused(t *testing.T) {
	ns := e.namespace(t)
	gw := e.gateway(ns)
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)
	live, err := client.NewWithWatch(e.cfg, client.Options{Scheme: e.scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := e.ctx(t)
	req := ctrl.Request{NamespacedName: key}
	if _, err := e.reconciler(live, events.NewFakeRecorder(100)).Reconcile(ctx, req); err != nil {
		t.Fatalf("first reconcile: %v", err)
	}
	stale := &appsv1.StatefulSet{}
	e.getOwned(t, ns, "chat", stale)
	e.editOwned(t, ns, "chat", &appsv1.StatefulSet{}, func(o client.Object) {
		o.(*appsv1.StatefulSet).Spec.Template.Spec.Containers[0].Image = "edited:by-hand"
	})
	e.update(t, key, func(gw *v1alpha1.TCPGateway) { gw.Spec.Image = "tcpgateway:v2" })
	statusBefore := &v1alpha1.TCPGateway{}
	if err := e.c.Get(ctx, key, statusBefore); err != nil {
		t.Fatal(err)
	}

	lagging := interceptor.NewClient(live, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if sts, ok := obj.(*appsv1.StatefulSet); ok {
				stale.DeepCopyInto(sts)
				return nil
			}
			return c.Get(ctx, k, obj, opts...)
		},
	})
	conflicts := testutil.ToFloat64(writesRefused.WithLabelValues(refusedConflict))
	_, err = e.reconciler(lagging, events.NewFakeRecorder(100)).Reconcile(ctx, req)
	if !apierrors.IsConflict(err) {
		t.Fatalf("reconcile from a stale StatefulSet = %v, want a conflict", err)
	}
	if got := testutil.ToFloat64(writesRefused.WithLabelValues(refusedConflict)) - conflicts; got != 1 {
		t.Errorf("tcpgw_operator_writes_refused_total{reason=conflict} grew by %v, want 1", got)
	}
	sts := &appsv1.StatefulSet{}
	e.getOwned(t, ns, "chat", sts)
	if sts.ResourceVersion == stale.ResourceVersion || sts.Spec.Template.Spec.Containers[0].Image != "edited:by-hand" {
		t.Errorf("the stale patch was applied: image %q", sts.Spec.Template.Spec.Containers[0].Image)
	}
	statusAfter := &v1alpha1.TCPGateway{}
	if err := e.c.Get(ctx, key, statusAfter); err != nil {
		t.Fatal(err)
	}
	if statusAfter.ResourceVersion != statusBefore.ResourceVersion {
		t.Errorf("the TCPGateway was written after the conflict: %+v", statusAfter.Status.Conditions)
	}

	if _, err := e.reconciler(live, events.NewFakeRecorder(100)).Reconcile(ctx, req); err != nil {
		t.Fatalf("reconcile from the current StatefulSet: %v", err)
	}
	e.getOwned(t, ns, "chat", sts)
	eq(t, "image after the next reconcile", sts.Spec.Template.Spec.Containers[0].Image, "tcpgateway:v2")
}
