//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// A gateway that refuses to start (its HS256 key in the Secret is too short) makes the
// TCPGateway Degraded=True, reason PodsFailing, with the gateway's own error in the message:
// the node agent, like the kubelet, turns the end of the crashed container's log into its
// termination message (terminationMessagePolicy FallbackToLogsOnError), and the operator
// watches the pods. A fixed Secret and new pods clear it, and the TCPGateway becomes Ready.
func TestDegraded(t *testing.T) {
	s := shared(t)
	const ns, name = "e2e-degraded", "chat"
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	key := crclient.ObjectKey{Namespace: ns, Name: name}

	// Not s.apply: it waits for Ready, which these pods never get.
	short := []byte("too-short-a-key")
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "jwt", Namespace: ns},
		Data:       map[string][]byte{"hs256.secret": short},
	}
	gw := &v1alpha1.TCPGateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: s.gatewaySpec(2)}
	for _, o := range []crclient.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, secret, gw} {
		if err := s.k.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	t.Cleanup(func() {
		// Stop the pods, so the tests that follow have the machine; the system's end
		// removes the rest.
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		_ = s.k.Delete(cctx, &v1alpha1.TCPGateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
	})

	// The gateway's error (gateway/auth), as cmd/gateway prints it before exiting 1.
	gatewayErr := fmt.Sprintf("HS256 secret is %d bytes, need at least 32", len(short))
	var degraded *metav1.Condition
	took, ok := poll(ctx, readyTimeout, func(ctx context.Context) bool {
		if err := s.k.Get(ctx, key, gw); err != nil {
			return false
		}
		degraded = meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionDegraded)
		return degraded != nil && degraded.Status == metav1.ConditionTrue && degraded.Reason == v1alpha1.ReasonPodsFailing &&
			strings.HasPrefix(degraded.Message, "2 of 2 pods failing: ") && strings.Contains(degraded.Message, gatewayErr)
	})
	if !ok {
		t.Logf("status: %+v", gw.Status)
		s.dumpPods(t, ns)
		t.Fatalf("not Degraded=True/PodsFailing with 2 of 2 pods failing and %q after %v; Degraded = %+v",
			gatewayErr, took.Round(time.Millisecond), degraded)
	}
	t.Logf("Degraded=True %s after %v: %s", degraded.Reason, took.Round(time.Millisecond), degraded.Message)
	for _, want := range []string{name + "-0 ", name + "-1 ", "(exit 1, ", "gateway: while setting up auth: "} {
		if !strings.Contains(degraded.Message, want) {
			t.Errorf("Degraded message %q does not contain %q", degraded.Message, want)
		}
	}
	if c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("Ready = %+v, want False", c)
	}
	if _, ok := poll(ctx, 30*time.Second, func(ctx context.Context) bool {
		var evs eventsv1.EventList
		if err := s.k.List(ctx, &evs, crclient.InNamespace(ns)); err != nil {
			return false
		}
		for _, ev := range evs.Items {
			if ev.Regarding.Kind == "TCPGateway" && ev.Type == corev1.EventTypeWarning && ev.Reason == v1alpha1.ReasonPodsFailing {
				return true
			}
		}
		return false
	}); !ok {
		t.Error("no PodsFailing Warning Event about the TCPGateway")
	}

	// Fix the key. The pods read it at start, and this node agent writes volumes once per pod
	// (a kubelet refreshes them within a minute), so replace the pods rather than wait for the
	// next restart.
	fixed := time.Now()
	secret.Data = map[string][]byte{"hs256.secret": hs256}
	if err := s.k.Update(ctx, secret); err != nil {
		t.Fatalf("updating the Secret: %v", err)
	}
	if err := s.k.DeleteAllOf(ctx, &corev1.Pod{}, crclient.InNamespace(ns),
		crclient.MatchingLabels{"app.kubernetes.io/instance": name}); err != nil {
		t.Fatalf("deleting the pods: %v", err)
	}
	took, ok = poll(ctx, readyTimeout, func(ctx context.Context) bool {
		if err := s.k.Get(ctx, key, gw); err != nil {
			return false
		}
		degraded = meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionDegraded)
		return degraded != nil && degraded.Status == metav1.ConditionFalse && degraded.Reason == v1alpha1.ReasonAsExpected &&
			meta.IsStatusConditionTrue(gw.Status.Conditions, v1alpha1.ConditionReady)
	})
	if !ok {
		t.Logf("status: %+v", gw.Status)
		s.dumpPods(t, ns)
		t.Fatalf("not Degraded=False and Ready after the fix, %v; Degraded = %+v", took.Round(time.Millisecond), degraded)
	}
	t.Logf("Degraded=False and Ready %s %v after the fix", gw.Status.ReadyText, time.Since(fixed).Round(time.Millisecond))
}
