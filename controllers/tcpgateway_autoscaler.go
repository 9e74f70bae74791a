package controllers

import (
	"context"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// reconcileAutoscaler writes the HorizontalPodAutoscaler of spec.autoscaling, or deletes the one
// this TCPGateway owns when autoscaling is not set (an object of that name it does not own is
// left alone). With an invalid configuration (rc nil) it leaves the autoscaler as it is, as the
// StatefulSet is left: its scale-in pace derives from the drain settings being refused.
func (r *TCPGatewayReconciler) reconcileAutoscaler(ctx context.Context, gw *v1alpha1.TCPGateway, rc *RenderedConfig) error {
	if rc == nil {
		return nil
	}
	if desired := HorizontalPodAutoscaler(gw, rc.Config.Drain.TerminationGracePeriod()); desired != nil {
		_, err := ensureOwned(ctx, r, gw, desired, &autoscalingv2.HorizontalPodAutoscaler{}, copyHPA, hpaInSync)
		return err
	}
	current := &autoscalingv2.HorizontalPodAutoscaler{}
	err := r.Get(ctx, client.ObjectKey{Namespace: gw.Namespace, Name: hpaName(gw)}, current)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("while getting HorizontalPodAutoscaler %s: %w", hpaName(gw), err)
	case !metav1.IsControlledBy(current, gw):
		return nil
	}
	// Preconditions: the object read, not one created since under the same name.
	uid, rv := current.UID, current.ResourceVersion
	if err := r.Delete(ctx, current, client.Preconditions{UID: &uid, ResourceVersion: &rv}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("while deleting HorizontalPodAutoscaler %s: %w", current.Name, err)
	}
	return nil
}

// copyHPA replaces the whole spec; the HPA controller writes only the status.
func copyHPA(dst, src *autoscalingv2.HorizontalPodAutoscaler) { dst.Spec = src.Spec }

// hpaInSync: the API server fills in the behavior the builder leaves out (scale-up rules,
// the select policy), which specMatches does not compare.
func hpaInSync(desired, live *autoscalingv2.HorizontalPodAutoscaler) bool {
	return specMatches(desired.Spec, live.Spec)
}
