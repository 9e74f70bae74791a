package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

func TestNetworkPolicy(t *testing.T) {
	tcp := func(p int32) []networkingv1.NetworkPolicyPort {
		return []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(p))}}
	}
	monitoring := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "monitoring"}}
	tests := []struct {
		name    string
		np      *v1alpha1.NetworkPolicySpec
		ports   [2]int32 // spec.port, spec.adminPort (0: default)
		want    bool
		clients []networkingv1.NetworkPolicyPort
		admin   []networkingv1.NetworkPolicyPort
		from    *metav1.LabelSelector
		// operator is passed to NetworkPolicy and expected after the metrics peer.
		operator *networkingv1.NetworkPolicyPeer
	}{
		{name: "unset: none", np: nil},
		{name: "disabled: none", np: &v1alpha1.NetworkPolicySpec{Enabled: false, MetricsNamespaceSelector: monitoring}},
		{
			name: "enabled, default selector: metrics from the gateway's namespace only",
			np:   &v1alpha1.NetworkPolicySpec{Enabled: true},
			want: true, clients: tcp(7000), admin: tcp(9090),
			from: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "prod"}},
		},
		{
			name:  "selected namespaces and custom ports",
			np:    &v1alpha1.NetworkPolicySpec{Enabled: true, MetricsNamespaceSelector: monitoring},
			ports: [2]int32{443, 8443},
			want:  true, clients: tcp(443), admin: tcp(8443), from: monitoring,
		},
		{
			name:     "the operator's pods admitted to the admin port beside the metrics namespaces",
			np:       &v1alpha1.NetworkPolicySpec{Enabled: true, MetricsNamespaceSelector: monitoring},
			operator: OperatorPeer("tcpgateway-system", map[string]string{"app.kubernetes.io/component": "operator"}),
			want:     true, clients: tcp(7000), admin: tcp(9090), from: monitoring,
		},
		{
			name: "empty selector: every namespace",
			np:   &v1alpha1.NetworkPolicySpec{Enabled: true, MetricsNamespaceSelector: &metav1.LabelSelector{}},
			want: true, clients: tcp(7000), admin: tcp(9090), from: &metav1.LabelSelector{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway()
			gw.Spec.NetworkPolicy = tt.np
			gw.Spec.Port, gw.Spec.AdminPort = tt.ports[0], tt.ports[1]
			pol := NetworkPolicy(gw, tt.operator)
			if !tt.want {
				if pol != nil {
					t.Fatalf("got a NetworkPolicy: %+v", pol.Spec)
				}
				return
			}
			eq(t, "name", pol.Name, "chat")
			eq(t, "namespace", pol.Namespace, "prod")
			eq(t, "labels", pol.Labels, objectLabels(gw))
			eq(t, "podSelector", pol.Spec.PodSelector, metav1.LabelSelector{MatchLabels: selectorLabels(gw)})
			// Ingress only: the gateways reach backends and Kafka wherever they are.
			eq(t, "policyTypes", pol.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress})
			eq(t, "egress", len(pol.Spec.Egress), 0)
			admins := []networkingv1.NetworkPolicyPeer{{NamespaceSelector: tt.from}}
			if tt.operator != nil {
				admins = append(admins, *tt.operator)
			}
			eq(t, "ingress", pol.Spec.Ingress, []networkingv1.NetworkPolicyIngressRule{
				{Ports: tt.clients}, // no From: every source
				{Ports: tt.admin, From: admins},
			})
			if pol.Annotations[AnnotationSpecHash] == "" {
				t.Error("no spec hash")
			}
		})
	}
	// The selector is copied, not shared with the TCPGateway.
	gw := newGateway()
	gw.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{Enabled: true, MetricsNamespaceSelector: monitoring}
	operator := OperatorPeer("tcpgateway-system", map[string]string{"app.kubernetes.io/component": "operator"})
	pol := NetworkPolicy(gw, operator)
	pol.Spec.Ingress[1].From[0].NamespaceSelector.MatchLabels["team"] = "changed"
	pol.Spec.Ingress[1].From[1].PodSelector.MatchLabels["app.kubernetes.io/component"] = "changed"
	eq(t, "spec's selector", monitoring.MatchLabels["team"], "monitoring")
	eq(t, "operator's selector", operator.PodSelector.MatchLabels["app.kubernetes.io/component"], "operator")
}

func TestOperatorPeer(t *testing.T) {
	labels := map[string]string{"app.kubernetes.io/name": "tcpgateway"}
	eq(t, "no namespace", OperatorPeer("", labels), (*networkingv1.NetworkPolicyPeer)(nil))
	eq(t, "no labels", OperatorPeer("ops", nil), (*networkingv1.NetworkPolicyPeer)(nil))
	// Both selectors in one peer: the operator's pods in the operator's namespace, not every pod there.
	eq(t, "peer", OperatorPeer("ops", labels), &networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ops"}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: labels},
	})
	peer := OperatorPeer("ops", labels)
	peer.PodSelector.MatchLabels["x"] = "y"
	eq(t, "labels copied", len(labels), 1)
}
