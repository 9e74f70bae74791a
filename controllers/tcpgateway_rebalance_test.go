package controllers

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// spec.rebalance.enabled: the operator makes the key Secret (random, controlled by the
// TCPGateway), mounts it into the pods' config volume, names it in gateway.yaml, and reports
// status.rebalance (Waiting: envtest runs no pods). A Secret of that name it does not control
// is refused (Degraded), never used: its key would be someone else's.
func (e *env) testRebalanceKey(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	gw.Spec.Rebalance = &v1alpha1.Rebalance{Enabled: true}
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)
	gw = e.waitGateway(t, key, func(gw *v1alpha1.TCPGateway) error {
		if st := gw.Status.Rebalance; st == nil || st.State != v1alpha1.RebalanceWaiting {
			return fmt.Errorf("status.rebalance %+v, want Waiting", gw.Status.Rebalance)
		}
		return nil
	})
	eq(t, "defaults", *gw.Spec.Rebalance, v1alpha1.Rebalance{Enabled: true, MaxImbalance: "20%", Rate: 50, Interval: "30s"})

	secret := &corev1.Secret{}
	e.getOwned(t, ns, "chat-rebalance", secret)
	if ref := metav1.GetControllerOf(secret); ref == nil || ref.UID != gw.UID {
		t.Errorf("Secret controller %+v, want the TCPGateway %s", ref, gw.UID)
	}
	if k := secret.Data[RebalanceSecretKey]; len(k) != 32 || strings.Count(string(k), string(k[:1])) == 32 {
		t.Errorf("key of %d bytes %x, want 32 random ones", len(k), k)
	}
	sts := &appsv1.StatefulSet{}
	e.getOwned(t, ns, "chat", sts)
	var projected bool
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if s := src.Secret; s != nil && s.Name == "chat-rebalance" && len(s.Items) == 1 &&
				s.Items[0] == (corev1.KeyToPath{Key: "key", Path: "rebalance/key"}) {
				projected = true
			}
		}
	}
	if !projected {
		t.Errorf("the key is not projected into the config volume: %+v", sts.Spec.Template.Spec.Volumes)
	}
	cm := &corev1.ConfigMap{}
	e.getOwned(t, ns, "chat-config", cm)
	if !strings.Contains(cm.Data[ConfigFile], "rebalanceKeyFile: rebalance/key") {
		t.Errorf("gateway.yaml does not name the key:\n%s", cm.Data[ConfigFile])
	}

	// Another TCPGateway whose key Secret name is taken by a Secret it does not control.
	other := e.gateway(ns)
	other.Name = "other"
	other.Spec.Rebalance = &v1alpha1.Rebalance{Enabled: true}
	planted := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other-rebalance"},
		Data: map[string][]byte{"key": []byte(strings.Repeat("x", 32))}}
	if err := e.c.Create(e.ctx(t), planted); err != nil {
		t.Fatal(err)
	}
	e.create(t, other)
	eventually(t, waitTimeout, func() error {
		gw := &v1alpha1.TCPGateway{}
		if err := e.c.Get(e.ctx(t), types.NamespacedName{Namespace: ns, Name: "other"}, gw); err != nil {
			return err
		}
		// The objects phase fails, so observedGeneration stays behind: read the condition.
		c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionDegraded)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonReconcileError ||
			!strings.Contains(c.Message, "the Secret other-rebalance exists and is not controlled by this TCPGateway") {
			return fmt.Errorf("Degraded condition %+v", c)
		}
		return nil
	})
}
