package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

func TestPodDisruptionBudget(t *testing.T) {
	one, pct := intstr.FromInt32(1), intstr.FromString("25%")
	zero := intstr.FromInt32(0)
	for _, tt := range []struct {
		name             string
		spec             *v1alpha1.PodDisruptionBudgetSpec
		wantMax, wantMin *intstr.IntOrString
	}{
		{name: "unset: one pod at a time", wantMax: &one},
		{name: "empty: one pod at a time", spec: &v1alpha1.PodDisruptionBudgetSpec{}, wantMax: &one},
		{name: "maxUnavailable percentage", spec: &v1alpha1.PodDisruptionBudgetSpec{MaxUnavailable: &pct}, wantMax: &pct},
		{name: "maxUnavailable 0 blocks evictions", spec: &v1alpha1.PodDisruptionBudgetSpec{MaxUnavailable: &zero}, wantMax: &zero},
		{name: "minAvailable replaces the default maxUnavailable", spec: &v1alpha1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(2))}, wantMin: ptr.To(intstr.FromInt32(2))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway(func(gw *v1alpha1.TCPGateway) { gw.Spec.PodDisruptionBudget = tt.spec })
			pdb := PodDisruptionBudget(gw)
			eq(t, "maxUnavailable", pdb.Spec.MaxUnavailable, tt.wantMax)
			eq(t, "minAvailable", pdb.Spec.MinAvailable, tt.wantMin)
			eq(t, "name", pdb.Namespace+"/"+pdb.Name, "prod/chat")
			eq(t, "selector", pdb.Spec.Selector.MatchLabels, selectorLabels(gw))
			if pdb.Annotations[AnnotationSpecHash] != specHash(pdb.Labels, nil, pdb.Spec) {
				t.Error("spec-hash annotation does not match the spec")
			}
		})
	}
	base := PodDisruptionBudget(newGateway()).Annotations[AnnotationSpecHash]
	changed := PodDisruptionBudget(newGateway(func(gw *v1alpha1.TCPGateway) {
		gw.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{MaxUnavailable: &pct}
	})).Annotations[AnnotationSpecHash]
	if base == changed {
		t.Error("a budget change left the PodDisruptionBudget spec hash unchanged")
	}
}
