package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// computeStatus fills gw.Status from what the reconcile observed. observedGeneration moves
// only when no API call failed: an InvalidConfig or a Kafka failure is a result for this
// generation (reported in conditions), an API error is not.
func computeStatus(gw *v1alpha1.TCPGateway, o *observed) {
	s := &gw.Status
	s.Replicas, s.ReadyReplicas = 0, 0
	if sts := o.statefulSet; sts != nil {
		s.Replicas, s.ReadyReplicas = sts.Status.Replicas, sts.Status.ReadyReplicas
	}
	s.ReadyText = fmt.Sprintf("%d/%d", s.ReadyReplicas, replicas(gw))
	s.Selector = labels.SelectorFromSet(selectorLabels(gw)).String()
	s.Address = serviceAddress(o.clientService)

	k := &v1alpha1.KafkaStatus{DownlinkTopic: o.kafka.downlink, ReceiptsTopic: o.kafka.receipts, EventsTopic: o.kafka.events}
	switch prev := s.Kafka; {
	case o.kafka.err == nil:
		k.Partitions = int32(minPartitions(o.kafka.result))
	case prev != nil && prev.DownlinkTopic == k.DownlinkTopic && prev.ReceiptsTopic == k.ReceiptsTopic &&
		prev.EventsTopic == k.EventsTopic:
		// Kafka did not answer this time: the last known count still describes the topics.
		k.Partitions = prev.Partitions
	}
	s.Kafka = k

	setReadyCondition(gw, o)
	setProgressingCondition(gw, o)
	setDegradedCondition(gw, o)
	setKafkaCondition(gw, o)
	if o.reconcileErr == nil {
		s.ObservedGeneration = gw.Generation
	}
}

// patchStatus writes gw.Status when it differs from before's, and only then, on the condition
// that the TCPGateway is still the one read (its resourceVersion): a status computed from an
// older spec or by a deposed leader is refused with a conflict.
func (r *TCPGatewayReconciler) patchStatus(ctx context.Context, before, gw *v1alpha1.TCPGateway) error {
	if equality.Semantic.DeepEqual(before.Status, gw.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, gw, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("while patching the status: %w", err)
	}
	return nil
}

// recordTransitions emits a Warning Event when a problem appears or changes (so a user sees
// it in `kubectl describe` and `kubectl events`), and nothing while it merely persists: a
// reconcile that changes nothing writes nothing, Events included.
func (r *TCPGatewayReconciler) recordTransitions(before, gw *v1alpha1.TCPGateway) {
	for _, typ := range []string{v1alpha1.ConditionDegraded, v1alpha1.ConditionKafkaReady} {
		now := meta.FindStatusCondition(gw.Status.Conditions, typ)
		if now == nil {
			continue
		}
		bad := (typ == v1alpha1.ConditionDegraded) == (now.Status == "True")
		if !bad {
			continue
		}
		if old := meta.FindStatusCondition(before.Status.Conditions, typ); old != nil &&
			old.Status == now.Status && old.Reason == now.Reason && eventKey(old) == eventKey(now) {
			continue
		}
		r.Recorder.Eventf(gw, nil, corev1.EventTypeWarning, now.Reason, "Reconcile", "%s", now.Message)
	}
}

// eventKey is what of a condition's message must change for a new Event: all of it, except
// the restart counts of PodsFailing, which grow at every restart of a crash-looping pod.
func eventKey(c *metav1.Condition) string {
	if c.Reason == v1alpha1.ReasonPodsFailing {
		return withoutRestartCounts(c.Message)
	}
	return c.Message
}
