package controllers

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// topicEvent is a Normal Event about a change to one topic.
type topicEvent struct {
	Reason, Action, Note string
}

// topicEvents are the Events for the changes Ensure made, one per change and topic.
//
// The action names the topic's role (EnsureDownlinkTopic, EnsureReceiptsTopic): the events
// recorder (client-go tools/events) merges Events with the same type, reason, action,
// object and reporter into one series that keeps the first note, so with one action for both
// topics `kubectl describe` showed the downlink topic's TopicCreated and lost the receipts
// topic's. The reason stays TopicCreated for both, for whoever filters on it.
func topicEvents(res TopicResult, downlink, receipts string, retention v1alpha1.Duration) []topicEvent {
	var evs []topicEvent
	for _, t := range res.Topics {
		var action string
		switch t.Name {
		case downlink:
			action = "EnsureDownlinkTopic"
		case receipts:
			action = "EnsureReceiptsTopic"
		default:
			// The only other topic Ensure is given (topicSpecs).
			action = "EnsureEventsTopic"
		}
		switch {
		case t.Created:
			evs = append(evs, topicEvent{"TopicCreated", action,
				fmt.Sprintf("created Kafka topic %s with %d partitions", t.Name, t.Partitions)})
		case t.GrownFrom > 0:
			evs = append(evs, topicEvent{"PartitionsAdded", action,
				fmt.Sprintf("Kafka topic %s grown from %d to %d partitions", t.Name, t.GrownFrom, t.Partitions)})
		}
		if t.RetentionUpdated {
			evs = append(evs, topicEvent{"RetentionUpdated", action,
				fmt.Sprintf("Kafka topic %s retention set to %s", t.Name, retention)})
		}
	}
	return evs
}

// recordTopicChanges emits a Normal Event for each change Ensure made to the topics.
func (r *TCPGatewayReconciler) recordTopicChanges(gw *v1alpha1.TCPGateway, res TopicResult) {
	downlink, receipts := topicNames(gw)
	for _, ev := range topicEvents(res, downlink, receipts, gw.Spec.Kafka.Retention) {
		r.Recorder.Eventf(gw, nil, corev1.EventTypeNormal, ev.Reason, ev.Action, "%s", ev.Note)
	}
}
