package controllers

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// ensureOwned brings the object named by desired in line with it: it creates a missing
// object; it patches an existing one that is not in sync — our controller reference, labels
// and annotations (the spec-hash among them) missing or different, or inSync finding the spec
// edited by hand (drift.go) — copying the desired state over with copySpec; otherwise it
// writes nothing. It returns the object as the cluster has it.
//
// The spec-hash annotation catches what inSync cannot see: a field the TCPGateway takes back
// to its zero value (inSync leaves zero values to the API server's defaults).
//
// The patch carries the resourceVersion of the object as read (from the cache, before the
// leader fence's check): if anyone wrote it since — a new leader, a user — the API server
// refuses it with a conflict and the next reconcile starts from the newer object.
func ensureOwned[T client.Object](ctx context.Context, r *TCPGatewayReconciler, gw *v1alpha1.TCPGateway,
	desired, current T, copySpec func(dst, src T), inSync func(desired, live T) bool) (T, error) {
	kind := fmt.Sprintf("%T", desired)
	kind = kind[strings.LastIndex(kind, ".")+1:]
	if err := controllerutil.SetControllerReference(gw, desired, r.Scheme); err != nil {
		return current, fmt.Errorf("while setting the owner of %s %s: %w", kind, desired.GetName(), err)
	}
	err := r.Get(ctx, client.ObjectKeyFromObject(desired), current)
	if apierrors.IsNotFound(err) {
		if err := r.Create(ctx, desired); err != nil {
			return current, fmt.Errorf("while creating %s %s: %w", kind, desired.GetName(), err)
		}
		return desired, nil
	}
	if err != nil {
		return current, fmt.Errorf("while getting %s %s: %w", kind, desired.GetName(), err)
	}
	if owner := metav1.GetControllerOf(current); owner != nil && owner.UID != gw.UID {
		return current, fmt.Errorf("%s %s exists and is controlled by %s %s, not by this TCPGateway",
			kind, current.GetName(), owner.Kind, owner.Name)
	}
	if metav1.IsControlledBy(current, gw) && metadataInSync(desired, current) && inSync(desired, current) {
		return current, nil
	}
	patched := current.DeepCopyObject().(T)
	mergeMetadata(patched, desired)
	copySpec(patched, desired)
	if err := controllerutil.SetControllerReference(gw, patched, r.Scheme); err != nil {
		return current, fmt.Errorf("while setting the owner of %s %s: %w", kind, desired.GetName(), err)
	}
	if err := r.Patch(ctx, patched, client.MergeFromWithOptions(current, client.MergeFromWithOptimisticLock{})); err != nil {
		return current, fmt.Errorf("while updating %s %s: %w", kind, desired.GetName(), err)
	}
	return patched, nil
}

// mergeMetadata sets desired's labels and annotations on dst and keeps the ones others wrote,
// except user annotations the operator set before (AnnotationManagedAnnotations) that are no
// longer desired.
func mergeMetadata(dst, desired client.Object) {
	labels := dst.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range desired.GetLabels() {
		labels[k] = v
	}
	dst.SetLabels(labels)

	annotations := dst.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	want := desired.GetAnnotations()
	if prev := annotations[AnnotationManagedAnnotations]; prev != "" {
		for k := range strings.SplitSeq(prev, ",") {
			if _, ok := want[k]; !ok {
				delete(annotations, k)
			}
		}
	}
	if _, ok := want[AnnotationManagedAnnotations]; !ok {
		delete(annotations, AnnotationManagedAnnotations)
	}
	for k, v := range want {
		annotations[k] = v
	}
	dst.SetAnnotations(annotations)
}

// The copySpec functions of ensureOwned, one per owned kind.

func copyConfigMap(dst, src *corev1.ConfigMap) { dst.Data, dst.BinaryData = src.Data, src.BinaryData }

func copyPDB(dst, src *policyv1.PodDisruptionBudget) { dst.Spec = src.Spec }

func copyNetworkPolicy(dst, src *networkingv1.NetworkPolicy) { dst.Spec = src.Spec }

// copyStatefulSet replaces the whole spec: everything in it is the operator's, and the fields
// the API server refuses to change (selector, serviceName, podManagementPolicy) are the same
// in every desired StatefulSet of a TCPGateway. Only `kubectl rollout restart`'s template
// annotation is kept (annotationRestartedAt).
func copyStatefulSet(dst, src *appsv1.StatefulSet) {
	restartedAt, restarted := dst.Spec.Template.Annotations[annotationRestartedAt]
	dst.Spec = *src.Spec.DeepCopy()
	if _, ours := src.Spec.Template.Annotations[annotationRestartedAt]; restarted && !ours {
		if dst.Spec.Template.Annotations == nil {
			dst.Spec.Template.Annotations = map[string]string{}
		}
		dst.Spec.Template.Annotations[annotationRestartedAt] = restartedAt
	}
}

// copyService sets the fields the operator manages and keeps what the API server allocated
// (clusterIP, node ports, the health check node port), which a Service update may not drop.
func copyService(dst, src *corev1.Service) {
	nodePorts := map[string]int32{}
	for _, p := range dst.Spec.Ports {
		nodePorts[p.Name] = p.NodePort
	}
	dst.Spec.Type = src.Spec.Type
	dst.Spec.Selector = src.Spec.Selector
	dst.Spec.PublishNotReadyAddresses = src.Spec.PublishNotReadyAddresses
	dst.Spec.ExternalTrafficPolicy = src.Spec.ExternalTrafficPolicy
	dst.Spec.LoadBalancerSourceRanges = src.Spec.LoadBalancerSourceRanges
	dst.Spec.Ports = append([]corev1.ServicePort(nil), src.Spec.Ports...)
	if src.Spec.Type != corev1.ServiceTypeClusterIP {
		for i := range dst.Spec.Ports {
			dst.Spec.Ports[i].NodePort = nodePorts[dst.Spec.Ports[i].Name]
		}
	}
	if src.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal || src.Spec.Type != corev1.ServiceTypeLoadBalancer {
		// Only a LoadBalancer with policy Local has a health check node port.
		dst.Spec.HealthCheckNodePort = 0
	}
	if src.Spec.Type != corev1.ServiceTypeLoadBalancer {
		dst.Spec.AllocateLoadBalancerNodePorts = nil
	}
}
