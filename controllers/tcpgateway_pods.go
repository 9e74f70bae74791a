package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// The gateway pods: read for the Degraded condition (PodsFailing, see pod_failures.go) and
// watched so that a pod that starts or stops failing is reported at once. The pods are the
// StatefulSet controller's; the operator never writes them.

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

// observePods puts the StatefulSet's pods in o: those of the TCPGateway's namespace matching
// the StatefulSet's selector and controlled by it, read from the cache (which holds only pods
// with the operator's managed-by label, see OwnedCacheOptions).
func (r *TCPGatewayReconciler) observePods(ctx context.Context, gw *v1alpha1.TCPGateway, o *observed) error {
	sts := o.statefulSet
	if sts == nil || sts.Spec.Selector == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil {
		return fmt.Errorf("while reading the selector of StatefulSet %s: %w", sts.Name, err)
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(gw.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return fmt.Errorf("while listing the pods of StatefulSet %s: %w", sts.Name, err)
	}
	for _, p := range pods.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.UID == sts.UID {
			o.pods = append(o.pods, p)
		}
	}
	return nil
}

// gatewayOfPod maps a gateway pod to its TCPGateway, by the labels the operator puts on the
// pod template (objectLabels).
func gatewayOfPod(_ context.Context, obj client.Object) []reconcile.Request {
	l := obj.GetLabels()
	if l[LabelName] != AppName || l[LabelManagedBy] != ManagedBy || l[LabelInstance] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: l[LabelInstance]}}}
}

// podFailureChanged passes the pod events that can change the PodsFailing condition: a pod
// that starts failing, fails differently (another reason, one more restart) or stops failing
// (deletion included), and a failing pod created (the manager's initial list). Readiness
// flips and the like reach the reconciler through the StatefulSet's status instead.
var podFailureChanged = predicate.Funcs{
	CreateFunc:  func(e event.CreateEvent) bool { return failureText(e.Object) != "" },
	DeleteFunc:  func(event.DeleteEvent) bool { return true },
	UpdateFunc:  func(e event.UpdateEvent) bool { return failureText(e.ObjectOld) != failureText(e.ObjectNew) },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// failureText describes obj's failure ("" when it is not a failing pod).
func failureText(obj client.Object) string {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return ""
	}
	if f := podFailureOf(pod); f != nil {
		return f.String()
	}
	return ""
}
