package controllers

import (
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/controllers/sessioncount"
)

func TestHorizontalPodAutoscaler(t *testing.T) {
	gw := newGateway()
	if HorizontalPodAutoscaler(gw, time.Minute) != nil {
		t.Fatal("an autoscaler without spec.autoscaling")
	}
	tests := []struct {
		name       string
		as         v1alpha1.Autoscaling
		grace      time.Duration
		min        int32
		window     int32
		periodSecs int32
	}{
		{"defaults: window 300s, one pod per grace period", v1alpha1.Autoscaling{MinReplicas: 2, MaxReplicas: 8, TargetConnectionsPerPod: 1000},
			70 * time.Second, 2, 300, 70},
		{"grace rounded up; a window below it raised to it", v1alpha1.Autoscaling{MinReplicas: 3, MaxReplicas: 8, TargetConnectionsPerPod: 1000, ScaleDownStabilizationSeconds: ptr.To[int32](0)},
			18500 * time.Millisecond, 3, 19, 19},
		{"a window at the grace period kept", v1alpha1.Autoscaling{MinReplicas: 2, MaxReplicas: 4, TargetConnectionsPerPod: 20, ScaleDownStabilizationSeconds: ptr.To[int32](20)},
			20 * time.Second, 2, 20, 20},
		{"grace beyond what a policy takes: window raised to the longest period", v1alpha1.Autoscaling{MinReplicas: 1, MaxReplicas: 2, TargetConnectionsPerPod: 1, ScaleDownStabilizationSeconds: ptr.To[int32](30)},
			2 * time.Hour, 1, 1800, 1800},
		{"minReplicas 0 from Go (not the schema): 1", v1alpha1.Autoscaling{MaxReplicas: 2, TargetConnectionsPerPod: 1},
			time.Second, 1, 300, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway()
			gw.Spec.Autoscaling = &tt.as
			hpa := HorizontalPodAutoscaler(gw, tt.grace)
			eq(t, "name", hpa.Name, "chat")
			eq(t, "namespace", hpa.Namespace, "prod")
			eq(t, "labels", hpa.Labels, objectLabels(gw))
			eq(t, "target", hpa.Spec.ScaleTargetRef, autoscalingv2.CrossVersionObjectReference{APIVersion: "tcpgateway.io/v1alpha1", Kind: "TCPGateway", Name: "chat"})
			eq(t, "min", *hpa.Spec.MinReplicas, tt.min)
			eq(t, "max", hpa.Spec.MaxReplicas, tt.as.MaxReplicas)
			eq(t, "metrics", len(hpa.Spec.Metrics), 1)
			m := hpa.Spec.Metrics[0]
			eq(t, "metric type", m.Type, autoscalingv2.PodsMetricSourceType)
			eq(t, "metric", m.Pods.Metric, autoscalingv2.MetricIdentifier{Name: v1alpha1.AutoscalingMetric})
			eq(t, "target type", m.Pods.Target.Type, autoscalingv2.AverageValueMetricType)
			eq(t, "target", m.Pods.Target.AverageValue.Value(), tt.as.TargetConnectionsPerPod)
			if hpa.Spec.Behavior.ScaleUp != nil {
				t.Error("scale-up rules set: the HPA's defaults are meant")
			}
			down := hpa.Spec.Behavior.ScaleDown
			eq(t, "window", *down.StabilizationWindowSeconds, tt.window)
			eq(t, "policies", down.Policies, []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: tt.periodSecs}})
			if hpa.Annotations[AnnotationSpecHash] == "" {
				t.Error("no spec hash")
			}
		})
	}
}

// The autoscaler's metric is the gauge the operator reads from the pods.
func TestAutoscalingMetricIsTheSessionGauge(t *testing.T) {
	eq(t, "metric", v1alpha1.AutoscalingMetric, sessioncount.SessionsMetric)
}
