package controllers

import (
	"errors"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
