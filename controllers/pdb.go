package controllers

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// PodDisruptionBudget lets voluntary evictions (node drains, cluster autoscaler) take one
// gateway pod at a time by default, so their clients reconnect in one wave per pod rather than
// all at once; spec.podDisruptionBudget sets another maxUnavailable or a minAvailable. It does
// not limit StatefulSet rolling updates: the StatefulSet controller deletes pods itself,
// without the eviction API, and already replaces one pod at a time.
func PodDisruptionBudget(gw *v1alpha1.TCPGateway) *policyv1.PodDisruptionBudget {
	maxUnavailable, minAvailable := ptr.To(intstr.FromInt32(1)), (*intstr.IntOrString)(nil)
	if b := gw.Spec.PodDisruptionBudget; b != nil && (b.MaxUnavailable != nil || b.MinAvailable != nil) {
		maxUnavailable, minAvailable = b.MaxUnavailable, b.MinAvailable
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{
			Name:      pdbName(gw),
			Namespace: gw.Namespace,
			Labels:    objectLabels(gw),
		},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: maxUnavailable,
			MinAvailable:   minAvailable,
			Selector:       &metav1.LabelSelector{MatchLabels: selectorLabels(gw)},
		},
	}
	pdb.Annotations = map[string]string{AnnotationSpecHash: specHash(pdb.Labels, nil, pdb.Spec)}
	return pdb
}
