package controllers

import (
	"fmt"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// spec.networkPolicy: off by default; enabled, an owned NetworkPolicy follows the selector;
// disabled again, the operator deletes it.
func (e *env) testNetworkPolicy(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)
	e.waitGateway(t, key, hasCondition(v1alpha1.ConditionKafkaReady, "True", v1alpha1.ReasonTopicsReady))
	polKey := types.NamespacedName{Namespace: ns, Name: "chat"}
	if err := e.c.Get(e.ctx(t), polKey, &networkingv1.NetworkPolicy{}); !apierrors.IsNotFound(err) {
		t.Fatalf("NetworkPolicy without spec.networkPolicy: %v, want none", err)
	}

	e.update(t, key, func(gw *v1alpha1.TCPGateway) {
		gw.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{Enabled: true}
	})
	pol := &networkingv1.NetworkPolicy{}
	eventually(t, waitTimeout, func() error { return e.c.Get(e.ctx(t), polKey, pol) })
	gw = e.waitGateway(t, key, func(*v1alpha1.TCPGateway) error { return nil })
	if ref := metav1.GetControllerOf(pol); ref == nil || ref.UID != gw.UID || ref.Kind != "TCPGateway" {
		t.Errorf("controller reference %+v, want TCPGateway %s", ref, gw.UID)
	}
	eq(t, "default metrics selector", pol.Spec.Ingress[1].From[0].NamespaceSelector,
		&metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}})
	// The operator's pods reach the admin port from their own namespace (rebalance, custom metrics).
	eq(t, "operator peer", pol.Spec.Ingress[1].From[1:], []networkingv1.NetworkPolicyPeer{*OperatorPeer("tcpgateway-system", testOperatorLabels)})

	monitoring := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "monitoring"}}
	e.update(t, key, func(gw *v1alpha1.TCPGateway) { gw.Spec.NetworkPolicy.MetricsNamespaceSelector = monitoring })
	eventually(t, waitTimeout, func() error {
		if err := e.c.Get(e.ctx(t), polKey, pol); err != nil {
			return err
		}
		if got := pol.Spec.Ingress[1].From[0].NamespaceSelector; got.MatchLabels["team"] != "monitoring" {
			return fmt.Errorf("metrics selector %v", got)
		}
		return nil
	})

	e.update(t, key, func(gw *v1alpha1.TCPGateway) { gw.Spec.NetworkPolicy.Enabled = false })
	eventually(t, waitTimeout, func() error {
		if err := e.c.Get(e.ctx(t), polKey, &networkingv1.NetworkPolicy{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("NetworkPolicy still there after disabling it (%v)", err)
		}
		return nil
	})
}
