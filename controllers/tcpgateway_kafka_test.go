package controllers

import (
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

func TestTopicSpecs(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.TCPGateway)
		want   []TopicSpec
	}{
		{
			name: "defaults",
			want: []TopicSpec{
				{Name: "prod.chat.downlink", Partitions: 12, ReplicationFactor: 3, Retention: 24 * time.Hour},
				{Name: "prod.chat.receipts", Partitions: 12, ReplicationFactor: 3, Retention: 24 * time.Hour},
				{Name: "prod.chat.session-events", Partitions: 12, ReplicationFactor: 3, Retention: 24 * time.Hour},
			},
		},
		{
			name: "explicit",
			mutate: func(gw *v1alpha1.TCPGateway) {
				k := &gw.Spec.Kafka
				k.DownlinkTopic, k.ReceiptsTopic, k.EventsTopic, k.Partitions, k.ReplicationFactor, k.Retention = "d", "r", "e", 3, 1, "90m"
			},
			want: []TopicSpec{
				{Name: "d", Partitions: 3, ReplicationFactor: 1, Retention: 90 * time.Minute},
				{Name: "r", Partitions: 3, ReplicationFactor: 1, Retention: 90 * time.Minute},
				{Name: "e", Partitions: 3, ReplicationFactor: 1, Retention: 90 * time.Minute},
			},
		},
		{
			name:   "no schema defaults (built in Go)",
			mutate: func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka = v1alpha1.Kafka{} },
			want: []TopicSpec{
				{Name: "prod.chat.downlink", Partitions: 12, ReplicationFactor: 3, Retention: 24 * time.Hour},
				{Name: "prod.chat.receipts", Partitions: 12, ReplicationFactor: 3, Retention: 24 * time.Hour},
				{Name: "prod.chat.session-events", Partitions: 12, ReplicationFactor: 3, Retention: 24 * time.Hour},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway()
			if tt.mutate != nil {
				tt.mutate(gw)
			}
			eq(t, "topics", topicSpecs(gw), tt.want)
		})
	}
}
