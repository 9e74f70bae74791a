package controllers

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/events"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

func TestComputeStatus(t *testing.T) {
	okKafka := kafkaOutcome{downlink: "prod.chat.downlink", receipts: "prod.chat.receipts", events: "prod.chat.session-events",
		result: TopicResult{Topics: []TopicState{{Partitions: 12}, {Partitions: 12}, {Partitions: 12}}}}
	tests := []struct {
		name      string
		prev      v1alpha1.TCPGatewayStatus
		o         observed
		want      v1alpha1.TCPGatewayStatus // conditions not compared (see the condition tests)
		wantObsGn int64
	}{
		{
			name: "healthy",
			o:    observed{statefulSet: sts(2, rolledOut(2, 1)), clientService: lb(corev1.LoadBalancerIngress{IP: "203.0.113.7"}), kafka: okKafka},
			want: v1alpha1.TCPGatewayStatus{
				Replicas: 2, ReadyReplicas: 1, ReadyText: "1/2", Address: "203.0.113.7",
				Selector: "app.kubernetes.io/instance=chat,app.kubernetes.io/name=tcpgateway",
				Kafka: &v1alpha1.KafkaStatus{DownlinkTopic: "prod.chat.downlink", ReceiptsTopic: "prod.chat.receipts",
					EventsTopic: "prod.chat.session-events", Partitions: 12},
			},
			wantObsGn: 3,
		},
		{
			name: "an API error keeps observedGeneration",
			prev: v1alpha1.TCPGatewayStatus{ObservedGeneration: 2},
			o:    observed{reconcileErr: errors.New("boom"), kafka: okKafka},
			want: v1alpha1.TCPGatewayStatus{
				ReadyText: "0/2", Selector: "app.kubernetes.io/instance=chat,app.kubernetes.io/name=tcpgateway",
				Kafka: &v1alpha1.KafkaStatus{DownlinkTopic: "prod.chat.downlink", ReceiptsTopic: "prod.chat.receipts",
					EventsTopic: "prod.chat.session-events", Partitions: 12},
			},
			wantObsGn: 2,
		},
		{
			name: "a Kafka failure keeps the last known partitions of the same topics",
			prev: v1alpha1.TCPGatewayStatus{Kafka: &v1alpha1.KafkaStatus{DownlinkTopic: "prod.chat.downlink", ReceiptsTopic: "prod.chat.receipts",
				EventsTopic: "prod.chat.session-events", Partitions: 24}},
			o: observed{kafka: kafkaOutcome{downlink: "prod.chat.downlink", receipts: "prod.chat.receipts", events: "prod.chat.session-events",
				err: fmt.Errorf("%w: x", ErrKafkaUnreachable)}},
			want: v1alpha1.TCPGatewayStatus{
				ReadyText: "0/2", Selector: "app.kubernetes.io/instance=chat,app.kubernetes.io/name=tcpgateway",
				Kafka: &v1alpha1.KafkaStatus{DownlinkTopic: "prod.chat.downlink", ReceiptsTopic: "prod.chat.receipts",
					EventsTopic: "prod.chat.session-events", Partitions: 24},
			},
			wantObsGn: 3,
		},
		{
			name: "a Kafka failure on renamed topics knows no partitions",
			prev: v1alpha1.TCPGatewayStatus{Kafka: &v1alpha1.KafkaStatus{DownlinkTopic: "old", ReceiptsTopic: "old2", Partitions: 24}},
			o:    observed{kafka: kafkaOutcome{downlink: "new", receipts: "new2", err: &TopicError{Topic: "new", Op: "create", Err: errors.New("no")}}},
			want: v1alpha1.TCPGatewayStatus{
				ReadyText: "0/2", Selector: "app.kubernetes.io/instance=chat,app.kubernetes.io/name=tcpgateway",
				Kafka: &v1alpha1.KafkaStatus{DownlinkTopic: "new", ReceiptsTopic: "new2"},
			},
			wantObsGn: 3,
		},
		{
			// The events topic may be smaller than the others (e.g. created by hand): its
			// count is the one that counts, and a renamed events topic alone forgets it.
			name: "a Kafka failure after the events topic was renamed knows no partitions",
			prev: v1alpha1.TCPGatewayStatus{Kafka: &v1alpha1.KafkaStatus{DownlinkTopic: "d", ReceiptsTopic: "r", EventsTopic: "old", Partitions: 24}},
			o:    observed{kafka: kafkaOutcome{downlink: "d", receipts: "r", events: "new", err: fmt.Errorf("%w: x", ErrKafkaUnreachable)}},
			want: v1alpha1.TCPGatewayStatus{
				ReadyText: "0/2", Selector: "app.kubernetes.io/instance=chat,app.kubernetes.io/name=tcpgateway",
				Kafka: &v1alpha1.KafkaStatus{DownlinkTopic: "d", ReceiptsTopic: "r", EventsTopic: "new"},
			},
			wantObsGn: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway()
			gw.Status = tt.prev
			computeStatus(gw, &tt.o)
			got := gw.Status
			eq(t, "observedGeneration", got.ObservedGeneration, tt.wantObsGn)
			eq(t, "conditions", len(got.Conditions), 4)
			got.Conditions, got.ObservedGeneration = nil, 0
			eq(t, "status", got, tt.want)
		})
	}
}

// A Warning Event when pods start failing and when the failure changes, not at every restart
// of a crash-looping pod; and none once they recover.
func TestRecordTransitionsPodsFailing(t *testing.T) {
	rec := events.NewFakeRecorder(10)
	r := &TCPGatewayReconciler{Recorder: rec}
	gw := newGateway()
	step := func(pods ...corev1.Pod) {
		t.Helper()
		before := gw.DeepCopy()
		setDegradedCondition(gw, &observed{pods: pods})
		r.recordTransitions(before, gw)
	}
	crash := func(restarts, code int32) corev1.Pod {
		return gatewayPod("chat-0", waiting("CrashLoopBackOff", "", restarts, exited(code, "Error", "auth: key too short")))
	}
	wantEvents := func(want ...string) {
		t.Helper()
		var got []string
		for len(rec.Events) > 0 {
			got = append(got, <-rec.Events)
		}
		if len(got) != len(want) {
			t.Fatalf("events %q, want %d", got, len(want))
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("event %q, want %q...", got[i], want[i])
			}
		}
	}
	step(gatewayPod("chat-0", running(true, 0, nil)))
	wantEvents()
	step(crash(1, 1))
	wantEvents("Warning PodsFailing 1 of 1 pod failing: chat-0 CrashLoopBackOff (exit 1, 1 restart): auth: key too short")
	step(crash(2, 1))
	step(crash(3, 1))
	wantEvents()
	step(crash(4, 2))
	wantEvents("Warning PodsFailing 1 of 1 pod failing: chat-0 CrashLoopBackOff (exit 2, 4 restarts)")
	step(gatewayPod("chat-0", running(true, 4, exited(2, "Error", ""))))
	wantEvents()
	eq(t, "Degraded", meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionDegraded).Reason, v1alpha1.ReasonAsExpected)
}
