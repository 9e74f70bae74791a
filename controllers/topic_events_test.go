package controllers

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

func TestTopicEvents(t *testing.T) {
	res := TopicResult{Topics: []TopicState{
		{Name: "ns.chat.downlink", Partitions: 12, Created: true},
		{Name: "ns.chat.receipts", Partitions: 12, Created: true},
		{Name: "ns.chat.session-events", Partitions: 12, Created: true},
	}}
	got := topicEvents(res, "ns.chat.downlink", "ns.chat.receipts", "24h")
	want := []topicEvent{
		{"TopicCreated", "EnsureDownlinkTopic", "created Kafka topic ns.chat.downlink with 12 partitions"},
		{"TopicCreated", "EnsureReceiptsTopic", "created Kafka topic ns.chat.receipts with 12 partitions"},
		{"TopicCreated", "EnsureEventsTopic", "created Kafka topic ns.chat.session-events with 12 partitions"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("created: %+v", got)
	}
	res = TopicResult{Topics: []TopicState{
		{Name: "ns.chat.downlink", Partitions: 24, GrownFrom: 12, RetentionUpdated: true},
		{Name: "ns.chat.receipts", Partitions: 24},
	}}
	got = topicEvents(res, "ns.chat.downlink", "ns.chat.receipts", "72h")
	want = []topicEvent{
		{"PartitionsAdded", "EnsureDownlinkTopic", "Kafka topic ns.chat.downlink grown from 12 to 24 partitions"},
		{"RetentionUpdated", "EnsureDownlinkTopic", "Kafka topic ns.chat.downlink retention set to 72h"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("grown: %+v", got)
	}
	// Events about different topics never share reason and action: the recorder would merge them.
	res = TopicResult{Topics: []TopicState{
		{Name: "a", Created: true, RetentionUpdated: true}, {Name: "b", GrownFrom: 1, RetentionUpdated: true},
		{Name: "c", Created: true, GrownFrom: 1, RetentionUpdated: true},
	}}
	seen := map[[2]string]string{}
	for _, ev := range topicEvents(res, "a", "b", "1h") {
		k := [2]string{ev.Reason, ev.Action}
		if prev, dup := seen[k]; dup {
			t.Errorf("%v used for %q and %q", k, prev, ev.Note)
		}
		seen[k] = ev.Note
	}
}

func TestConditionChanges(t *testing.T) {
	cond := func(typ, status, reason, msg string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: metav1.ConditionStatus(status), Reason: reason, Message: msg}
	}
	before := []metav1.Condition{
		cond("Ready", "False", "ReplicasNotReady", "0/3"),
		cond("KafkaReady", "False", "KafkaUnreachable", "dial"),
		cond("Degraded", "False", "AsExpected", ""),
	}
	after := []metav1.Condition{
		cond("Ready", "False", "ReplicasNotReady", "2/3"),     // message only
		cond("KafkaReady", "True", "TopicsReady", "ok"),       // status and reason
		cond("Degraded", "True", "PodsFailing", "pod chat-0"), // status and reason
		cond("Progressing", "True", "RollingOut", ""),         // new
	}
	var got []string
	for _, c := range conditionChanges(before, after) {
		got = append(got, c.Type+"="+string(c.Status)+"/"+c.Reason)
	}
	if want := []string{"KafkaReady=True/TopicsReady", "Degraded=True/PodsFailing", "Progressing=True/RollingOut"}; !slices.Equal(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	if c := conditionChanges(after, after); len(c) != 0 {
		t.Errorf("no change: %v", c)
	}
}

// The real events recorder keeps both TopicCreated Events, each naming its topic (it merged
// them into one, the downlink topic's, when both had the same action), and the operator's
// metrics count the ensure, the two creations and the condition changes.
func (e *env) testTopicEventsAndMetrics(t *testing.T) {
	ensureOK := topicOperations.WithLabelValues(topicOpEnsure, resultOK)
	created := topicChanges.WithLabelValues(changeCreated)
	kafkaReady := conditionTransitions.WithLabelValues(v1alpha1.ConditionKafkaReady, "True", v1alpha1.ReasonTopicsReady)
	ensure0, created0, ready0 := testutil.ToFloat64(ensureOK), testutil.ToFloat64(created), testutil.ToFloat64(kafkaReady)

	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	e.create(t, gw)
	e.waitGateway(t, client.ObjectKeyFromObject(gw), hasCondition(v1alpha1.ConditionKafkaReady, "True", v1alpha1.ReasonTopicsReady))

	downlink, receipts := topicNames(gw)
	var notes []string
	eventually(t, waitTimeout, func() error {
		var list eventsv1.EventList
		if err := e.c.List(e.ctx(t), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		notes = nil
		for _, ev := range list.Items {
			if ev.Type == corev1.EventTypeNormal && ev.Reason == "TopicCreated" && ev.Regarding.Name == gw.Name {
				notes = append(notes, ev.Note)
			}
		}
		if len(notes) < 3 {
			return fmt.Errorf("TopicCreated Events: %q", notes)
		}
		return nil
	})
	slices.Sort(notes)
	events := eventsTopicName(gw)
	if len(notes) != 3 || !strings.Contains(notes[0], downlink) || !strings.Contains(notes[1], receipts) || !strings.Contains(notes[2], events) {
		t.Errorf("TopicCreated Events %q, want one for each of %s, %s and %s", notes, downlink, receipts, events)
	}

	if d := testutil.ToFloat64(created) - created0; d != 3 {
		t.Errorf("tcpgw_operator_topic_changes_total{change=created} grew by %v, want 3", d)
	}
	if d := testutil.ToFloat64(ensureOK) - ensure0; d < 1 {
		t.Errorf("tcpgw_operator_topic_operations_total{operation=ensure,result=ok} grew by %v", d)
	}
	if d := testutil.ToFloat64(kafkaReady) - ready0; d != 1 {
		t.Errorf("tcpgw_operator_condition_transitions_total{type=KafkaReady,status=True,reason=TopicsReady} grew by %v, want 1", d)
	}
}
