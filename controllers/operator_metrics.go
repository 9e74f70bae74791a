package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// The operator's own metrics, served with controller-runtime's on the manager's metrics
// endpoint. controller_runtime_reconcile_total counts reconciles by result; these say what
// the reconciles did to Kafka and to the TCPGateways' conditions (docs/metrics.md).
var (
	topicOperations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tcpgw_operator_topic_operations_total",
		Help: "Kafka topic operations by operation (ensure: create missing topics, add partitions, set retention; delete) and result (ok, or the KafkaReady reason of the failure).",
	}, []string{"operation", "result"})
	topicChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tcpgw_operator_topic_changes_total",
		Help: "Changes the operator made to Kafka topics: created, partitions_added, retention_updated (one per topic, as the Normal Events).",
	}, []string{"change"})
	conditionTransitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tcpgw_operator_condition_transitions_total",
		Help: "TCPGateway condition changes written to the status, by condition type, new status and new reason.",
	}, []string{"type", "status", "reason"})
)

// Topic operation and change label values.
const (
	topicOpEnsure = "ensure"
	topicOpDelete = "delete"
	resultOK      = "ok"

	changeCreated          = "created"
	changePartitionsAdded  = "partitions_added"
	changeRetentionUpdated = "retention_updated"
)

func init() {
	metrics.Registry.MustRegister(topicOperations, topicChanges, conditionTransitions)
	// Every series a rate() or an alert may name exists from the start at 0.
	for _, op := range []string{topicOpEnsure, topicOpDelete} {
		for _, res := range []string{resultOK, v1alpha1.ReasonKafkaUnreachable, v1alpha1.ReasonKafkaTLSFailed,
			v1alpha1.ReasonKafkaAuthFailed, v1alpha1.ReasonKafkaSecretInvalid, v1alpha1.ReasonTopicError} {
			topicOperations.WithLabelValues(op, res)
		}
	}
	for _, c := range []string{changeCreated, changePartitionsAdded, changeRetentionUpdated} {
		topicChanges.WithLabelValues(c)
	}
}

// topicResult is the result label of a topic operation: ok, or the KafkaReady reason.
func topicResult(err error) string {
	if err == nil {
		return resultOK
	}
	return kafkaReason(err)
}

// countTopicOperation counts one topic operation and, when it succeeded, the changes it made.
func countTopicOperation(op string, res TopicResult, err error) {
	topicOperations.WithLabelValues(op, topicResult(err)).Inc()
	for _, t := range res.Topics {
		switch {
		case t.Created:
			topicChanges.WithLabelValues(changeCreated).Inc()
		case t.GrownFrom > 0:
			topicChanges.WithLabelValues(changePartitionsAdded).Inc()
		}
		if t.RetentionUpdated {
			topicChanges.WithLabelValues(changeRetentionUpdated).Inc()
		}
	}
}

// conditionChanges lists the conditions of after whose status or reason differ from
// before's (a new condition included): what a status write changes, message edits aside.
func conditionChanges(before, after []metav1.Condition) []metav1.Condition {
	var changed []metav1.Condition
	for _, c := range after {
		old := meta.FindStatusCondition(before, c.Type)
		if old == nil || old.Status != c.Status || old.Reason != c.Reason {
			changed = append(changed, c)
		}
	}
	return changed
}

// countConditionChanges counts the condition changes of a status that was written.
func countConditionChanges(before, after *v1alpha1.TCPGateway) {
	for _, c := range conditionChanges(before.Status.Conditions, after.Status.Conditions) {
		conditionTransitions.WithLabelValues(c.Type, string(c.Status), c.Reason).Inc()
	}
}
