package controllers

import (
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Drift: an owned object edited by hand (kubectl edit, scale, patch) no longer holds what its
// builder made. ensureOwned compares the two on every reconcile, and every change of an owned
// object triggers one (SetupWithManager: Owns), so an edit is undone within a reconcile.

// metadataInSync: mergeMetadata would change nothing on live (our labels and annotations,
// the spec hash among them, are there; others' are not our business).
func metadataInSync(desired, live client.Object) bool {
	merged := live.DeepCopyObject().(client.Object)
	mergeMetadata(merged, desired)
	return equality.Semantic.DeepEqual(merged.GetLabels(), live.GetLabels()) &&
		equality.Semantic.DeepEqual(merged.GetAnnotations(), live.GetAnnotations())
}

// specMatches reports whether live holds every value desired sets.
//
// desired is what a builder returns; live is what the API server stores, which fills in
// defaults (imagePullPolicy, probe periods, port protocols, ...). So a field desired leaves
// at its zero value — an empty string, 0, false, a nil pointer, an empty list or map — is
// not compared: it is the API server's or nobody's. A field desired sets is compared
// exactly: a pointer to a zero value counts as set (replicas: 0), and a list or map desired
// sets must have the same length and keys in live, so a container, port or key added by
// hand is drift too.
//
// apimachinery's equality.Semantic.DeepDerivative does the same except for that last point:
// it ignores elements live has beyond desired's.
func specMatches(desired, live any) bool {
	return matches(reflect.ValueOf(desired), reflect.ValueOf(live), false)
}

// intOrStringType is compared as a value, like the structs with unexported fields.
var intOrStringType = reflect.TypeFor[intstr.IntOrString]()

// matches compares d (desired) with l (live). explicit: d was reached through a pointer, or
// is a list element or map value, so its zero value is a value rather than an absence.
func matches(d, l reflect.Value, explicit bool) bool {
	if d.Type() != l.Type() {
		return false
	}
	switch d.Kind() {
	case reflect.Pointer, reflect.Interface:
		if d.IsNil() {
			return true
		}
		if l.IsNil() {
			return false
		}
		return matches(d.Elem(), l.Elem(), true)
	case reflect.Slice:
		if d.Len() == 0 {
			return true
		}
		if d.Len() != l.Len() {
			return false
		}
		for i := range d.Len() {
			if !matches(d.Index(i), l.Index(i), true) {
				return false
			}
		}
		return true
	case reflect.Map:
		if d.Len() == 0 {
			return true
		}
		if d.Len() != l.Len() {
			return false
		}
		for it := d.MapRange(); it.Next(); {
			lv := l.MapIndex(it.Key())
			if !lv.IsValid() || !matches(it.Value(), lv, true) {
				return false
			}
		}
		return true
	case reflect.Struct:
		if d.Type() == intOrStringType || !allExported(d.Type()) {
			// A value type (IntOrString, resource.Quantity, metav1.Time): compared whole,
			// with the semantic equality (a Quantity's 1000m equals 1).
			return (!explicit && d.IsZero()) || equality.Semantic.DeepEqual(d.Interface(), l.Interface())
		}
		for i := range d.NumField() {
			if !matches(d.Field(i), l.Field(i), false) {
				return false
			}
		}
		return true
	default:
		return (!explicit && d.IsZero()) || d.Equal(l)
	}
}

func allExported(t reflect.Type) bool {
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			return false
		}
	}
	return true
}

// The inSync functions of ensureOwned, one per owned kind: live holds desired's spec.

// configMapInSync compares the data exactly: the API server adds nothing to it.
func configMapInSync(desired, live *corev1.ConfigMap) bool {
	return equality.Semantic.DeepEqual(desired.Data, live.Data) &&
		equality.Semantic.DeepEqual(desired.BinaryData, live.BinaryData)
}

func serviceInSync(desired, live *corev1.Service) bool { return specMatches(desired.Spec, live.Spec) }

func pdbInSync(desired, live *policyv1.PodDisruptionBudget) bool {
	return specMatches(desired.Spec, live.Spec)
}

func networkPolicyInSync(desired, live *networkingv1.NetworkPolicy) bool {
	return specMatches(desired.Spec, live.Spec)
}

// annotationRestartedAt is the pod template annotation `kubectl rollout restart` sets to
// restart the pods. The operator keeps it (statefulSetInSync, copyStatefulSet): removing it
// would roll the pods a second time.
const annotationRestartedAt = "kubectl.kubernetes.io/restartedAt"

func statefulSetInSync(desired, live *appsv1.StatefulSet) bool {
	spec := live.Spec
	if _, ours := desired.Spec.Template.Annotations[annotationRestartedAt]; !ours {
		if _, set := spec.Template.Annotations[annotationRestartedAt]; set {
			spec = *live.Spec.DeepCopy()
			delete(spec.Template.Annotations, annotationRestartedAt)
		}
	}
	return specMatches(desired.Spec, spec)
}
