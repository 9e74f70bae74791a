package controllers

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// PodDisruptionBudget lets voluntary evictions (node drains, cluster autoscaler) take one
// gateway pod at a time, so their clients reconnect in one wave per pod rather than all at
// once. It does not limit StatefulSet rolling updates: the StatefulSet controller deletes
// pods itself, without the eviction API, and already replaces one pod at a time.
func PodDisruptionBudget(gw *v1alpha1.TCPGateway) *policyv1.PodDisruptionBudget {
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{
			Name:      pdbName(gw),
			Namespace: gw.Namespace,
			Labels:    objectLabels(gw),
		},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: selectorLabels(gw)},
		},
	}
	pdb.Annotations = map[string]string{AnnotationSpecHash: specHash(pdb.Labels, nil, pdb.Spec)}
	return pdb
}
