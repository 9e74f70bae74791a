package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// topicSpecs are the three topics of a TCPGateway, as it wants them.
func topicSpecs(gw *v1alpha1.TCPGateway) []TopicSpec {
	k := gw.Spec.Kafka
	partitions, rf := int(k.Partitions), int(k.ReplicationFactor)
	if partitions == 0 {
		partitions = v1alpha1.DefaultPartitions
	}
	if rf == 0 {
		rf = v1alpha1.DefaultReplicationFactor
	}
	retention := k.Retention
	if retention == "" {
		retention = v1alpha1.DefaultRetention
	}
	// The schema admits only durations that parse; an object built in Go with one that does
	// not keeps the broker's default retention.
	ret, _ := retention.Parse()
	downlink, receipts := topicNames(gw)
	return []TopicSpec{
		{Name: downlink, Partitions: partitions, ReplicationFactor: rf, Retention: ret},
		{Name: receipts, Partitions: partitions, ReplicationFactor: rf, Retention: ret},
		{Name: eventsTopicName(gw), Partitions: partitions, ReplicationFactor: rf, Retention: ret},
	}
}

func brokers(gw *v1alpha1.TCPGateway) []string {
	out := make([]string, len(gw.Spec.Kafka.BootstrapServers))
	for i, b := range gw.Spec.Kafka.BootstrapServers {
		out[i] = string(b)
	}
	return out
}

func (r *TCPGatewayReconciler) kafkaContext(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := r.KafkaTimeout
	if timeout == 0 {
		timeout = DefaultKafkaTimeout
	}
	return context.WithTimeout(ctx, timeout)
}

// reconcileKafka ensures the topics exist with enough partitions and the configured retention.
// It runs on every reconcile: Kafka has no watch to tell us a topic was deleted or changed
// behind our back, and the calls are cheap (a metadata request and a config description)
// when there is nothing to do.
func (r *TCPGatewayReconciler) reconcileKafka(ctx context.Context, gw *v1alpha1.TCPGateway, o *observed) {
	o.kafka.downlink, o.kafka.receipts = topicNames(gw)
	o.kafka.events = eventsTopicName(gw)
	kctx, cancel := r.kafkaContext(ctx)
	defer cancel()
	kc, err := r.kafkaCluster(kctx, gw)
	if err == nil {
		o.kafka.result, err = r.Topics.Ensure(kctx, kc, topicSpecs(gw))
	}
	o.kafka.err = err
	countTopicOperation(topicOpEnsure, o.kafka.result, err)
	if o.kafka.err != nil {
		log.FromContext(ctx).Info("Kafka topics not ready", "reason", kafkaReason(o.kafka.err), "error", o.kafka.err.Error())
		return
	}
	r.recordTopicChanges(gw, o.kafka.result)
}

// kafkaRecheck is how often a TCPGateway whose Kafka needs TLS or SASL is reconciled while
// nothing else happens: the operator cannot watch the Secrets (it may only get them), so this
// bounds how long a changed or revoked credential goes unreported in KafkaReady.
const kafkaRecheck = 10 * time.Minute

// kafkaSecured: the operator reads Secrets to reach this TCPGateway's Kafka.
func kafkaSecured(gw *v1alpha1.TCPGateway) bool {
	return gw.Spec.Kafka.TLS != nil || gw.Spec.Kafka.SASL != nil
}

// kafkaRetryAfter is the delay before the next attempt while KafkaReady is False.
func (r *TCPGatewayReconciler) kafkaRetryAfter(gw *v1alpha1.TCPGateway) time.Duration {
	since := r.now()
	if c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionKafkaReady); c != nil && c.Status == "False" {
		since = c.LastTransitionTime.Time
	}
	return kafkaRetryAfter(since, r.now())
}

// reconcileFinalizer adds FinalizerTopics when the topics are to be deleted with the
// TCPGateway, and removes it when they are not (deletionPolicy Retain): an object that keeps
// its topics needs no finalizer, so deleting it never waits on Kafka.
func (r *TCPGatewayReconciler) reconcileFinalizer(ctx context.Context, gw *v1alpha1.TCPGateway) error {
	want := gw.Spec.Kafka.DeletionPolicy == v1alpha1.TopicDeletionDelete
	if want == controllerutil.ContainsFinalizer(gw, FinalizerTopics) {
		return nil
	}
	patch := client.MergeFromWithOptions(gw.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if want {
		controllerutil.AddFinalizer(gw, FinalizerTopics)
	} else {
		controllerutil.RemoveFinalizer(gw, FinalizerTopics)
	}
	if err := r.Patch(ctx, gw, patch); err != nil {
		return fmt.Errorf("while updating the finalizers: %w", err)
	}
	return nil
}

// reconcileDelete deletes the topics of a TCPGateway being deleted with deletionPolicy Delete,
// then releases it. The owned objects need nothing: their owner references let the garbage
// collector delete them.
//
// While Kafka cannot be reached the deletion waits, with KafkaReady=False and a Warning Event
// saying why, and retries with a growing delay. To give up on the topics, set
// spec.kafka.deletionPolicy to Retain: the finalizer is then removed without touching Kafka.
// A Kafka Secret that no longer exists gives up by itself (Warning Event TopicsRetained).
func (r *TCPGatewayReconciler) reconcileDelete(ctx context.Context, gw *v1alpha1.TCPGateway) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(gw, FinalizerTopics) {
		return ctrl.Result{}, nil
	}
	if gw.Spec.Kafka.DeletionPolicy == v1alpha1.TopicDeletionDelete {
		downlink, receipts := topicNames(gw)
		kctx, cancel := r.kafkaContext(ctx)
		kc, err := r.kafkaCluster(kctx, gw)
		if err == nil {
			err = r.Topics.Delete(kctx, kc, []string{downlink, receipts, eventsTopicName(gw)})
		}
		cancel()
		countTopicOperation(topicOpDelete, TopicResult{}, err)
		switch {
		case errors.Is(err, ErrSecretNotFound):
			// The credentials are gone, typically because the whole namespace is being
			// deleted (its Secrets go at once): waiting would hold the namespace in
			// Terminating until someone sets deletionPolicy Retain by hand.
			r.Recorder.Eventf(gw, nil, corev1.EventTypeWarning, "TopicsRetained", "DeleteTopics",
				"Kafka topics %s, %s and %s left in Kafka: %v", downlink, receipts, eventsTopicName(gw), err)
		case err != nil:
			before := gw.DeepCopy()
			setCondition(gw, v1alpha1.ConditionKafkaReady, "False", kafkaReason(err),
				"while deleting the topics before the TCPGateway goes away: "+err.Error())
			r.recordTransitions(before, gw)
			if perr := r.patchStatus(ctx, before, gw); perr != nil {
				return ctrl.Result{}, perr
			}
			countConditionChanges(before, gw)
			return ctrl.Result{RequeueAfter: r.kafkaRetryAfter(gw)}, nil
		default:
			r.Recorder.Eventf(gw, nil, corev1.EventTypeNormal, "TopicsDeleted", "DeleteTopics",
				"deleted Kafka topics %s, %s and %s", downlink, receipts, eventsTopicName(gw))
		}
	}
	patch := client.MergeFromWithOptions(gw.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(gw, FinalizerTopics)
	if err := r.Patch(ctx, gw, patch); err != nil {
		return ctrl.Result{}, fmt.Errorf("while removing the finalizer: %w", err)
	}
	return ctrl.Result{}, nil
}
