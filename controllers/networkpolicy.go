package controllers

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// labelNamespaceName is the label the API server sets on every namespace to its own name.
const labelNamespaceName = "kubernetes.io/metadata.name"

// OperatorPeer selects the operator's own pods: those labelled podLabels in namespace. The
// operator reaches every gateway's admin port (it reads /metrics for the rebalance and the
// custom metrics API, and sends the signed POST /rebalance), so the NetworkPolicy admits it
// wherever it runs. Nil when either is unknown.
func OperatorPeer(namespace string, podLabels map[string]string) *networkingv1.NetworkPolicyPeer {
	if namespace == "" || len(podLabels) == 0 {
		return nil
	}
	return &networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{labelNamespaceName: namespace}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: maps.Clone(podLabels)},
	}
}

// NetworkPolicy builds the NetworkPolicy of spec.networkPolicy, or nil when it is not enabled.
// It governs ingress to the gateway pods only: the client port is open to every source (the
// internet, through the load balancer), the admin port to pods of the namespaces
// metricsNamespaceSelector selects (by default the TCPGateway's own) and to operator, the
// operator's pods (OperatorPeer; nil: none beyond the selected namespaces). Everything else is
// refused. Egress is not restricted: backends, the auth webhook and Kafka can be anywhere.
func NetworkPolicy(gw *v1alpha1.TCPGateway, operator *networkingv1.NetworkPolicyPeer) *networkingv1.NetworkPolicy {
	np := gw.Spec.NetworkPolicy
	if np == nil || !np.Enabled {
		return nil
	}
	metrics := np.MetricsNamespaceSelector
	if metrics == nil {
		metrics = &metav1.LabelSelector{MatchLabels: map[string]string{labelNamespaceName: gw.Namespace}}
	}
	admins := []networkingv1.NetworkPolicyPeer{{NamespaceSelector: metrics.DeepCopy()}}
	if operator != nil {
		admins = append(admins, *operator.DeepCopy())
	}
	port := func(p int32) []networkingv1.NetworkPolicyPort {
		return []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(p))}}
	}
	pol := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{
			Name:      networkPolicyName(gw),
			Namespace: gw.Namespace,
			Labels:    objectLabels(gw),
		},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: selectorLabels(gw)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{Ports: port(clientPort(gw))},
				{Ports: port(adminPort(gw)), From: admins},
			},
		},
	}
	if websocketEnabled(gw) { // open to all, like the client port
		pol.Spec.Ingress = append(pol.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{Ports: port(websocketPort(gw))})
	}
	pol.Annotations = map[string]string{AnnotationSpecHash: specHash(pol.Labels, nil, pol.Spec)}
	return pol
}
