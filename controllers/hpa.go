package controllers

import (
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// maxScalingPeriod is the longest periodSeconds the API server accepts in a scaling policy.
const maxScalingPeriod = 1800

// HorizontalPodAutoscaler builds the autoscaler of spec.autoscaling, or nil when it is not set.
// grace is the pods' termination grace period (the drain's hard deadline plus margin, as the
// StatefulSet gets it).
//
// It scales the TCPGateway itself through its scale subresource, not the StatefulSet: the
// autoscaler writes spec.replicas, which the operator carries to the StatefulSet as always, so
// the drift repair of the StatefulSet and the autoscaler never disagree.
//
// Scale-in is paced for the drain: one pod per grace period (so the autoscaler never has two
// pods draining at once and their clients reconnect in one paced wave at a time), after the
// stabilization window of spec.autoscaling, raised to the grace period if shorter: the HPA counts
// a period's allowance from the replicas at its start less those it added within it, so a
// window shorter than the period could end within a period of a scale-out and remove every pod
// just added at once. Scale-out keeps the HPA's defaults (no
// stabilization, up to double or +4 pods per 15 s): a surge of connections needs pods now.
func HorizontalPodAutoscaler(gw *v1alpha1.TCPGateway, grace time.Duration) *autoscalingv2.HorizontalPodAutoscaler {
	as := gw.Spec.Autoscaling
	if as == nil {
		return nil
	}
	period := scaleInPeriod(grace)
	minReplicas := as.MinReplicas
	if minReplicas < 1 {
		minReplicas = 1
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{
			Name:      hpaName(gw),
			Namespace: gw.Namespace,
			Labels:    objectLabels(gw),
		},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				APIVersion: v1alpha1.GroupVersion.String(),
				Kind:       "TCPGateway",
				Name:       gw.Name,
			},
			MinReplicas: ptr.To(minReplicas),
			MaxReplicas: as.MaxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.PodsMetricSourceType,
				Pods: &autoscalingv2.PodsMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: v1alpha1.AutoscalingMetric},
					Target: autoscalingv2.MetricTarget{
						Type:         autoscalingv2.AverageValueMetricType,
						AverageValue: resource.NewQuantity(as.TargetConnectionsPerPod, resource.DecimalSI),
					},
				},
			}},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleDown: &autoscalingv2.HPAScalingRules{
					StabilizationWindowSeconds: ptr.To(max(ptr.Deref(as.ScaleDownStabilizationSeconds, 300), period)),
					Policies: []autoscalingv2.HPAScalingPolicy{{
						Type:          autoscalingv2.PodsScalingPolicy,
						Value:         1,
						PeriodSeconds: period,
					}},
				},
			},
		},
	}
	hpa.Annotations = map[string]string{AnnotationSpecHash: specHash(hpa.Labels, nil, hpa.Spec)}
	return hpa
}

// scaleInPeriod is grace in whole seconds, rounded up, within what a scaling policy accepts.
func scaleInPeriod(grace time.Duration) int32 {
	s := math.Ceil(grace.Seconds())
	return int32(min(max(s, 1), maxScalingPeriod))
}
