package custommetrics

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/custom_metrics"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/controllers/sessioncount"
)

// Values turns the counts read from the pods of namespace into metric values: one per pod
// whose count was read, none for a pod whose read failed (the HPA then treats it as missing:
// as holding nothing when it would scale out, as at target when it would scale in, so a pod
// that cannot be read never causes a scale-in). The metric carries no labels, so a
// metricSelector that the empty label set does not satisfy selects nothing.
func Values(namespace string, counts []sessioncount.Count, metricSelector labels.Selector) []custom_metrics.MetricValue {
	if metricSelector != nil && !metricSelector.Matches(labels.Set{}) {
		return nil
	}
	out := make([]custom_metrics.MetricValue, 0, len(counts))
	for _, c := range counts {
		if c.Err != nil {
			continue
		}
		out = append(out, custom_metrics.MetricValue{
			DescribedObject: custom_metrics.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: namespace, Name: c.Pod},
			Metric:          custom_metrics.MetricIdentifier{Name: v1alpha1.AutoscalingMetric},
			Timestamp:       metav1.NewTime(c.At),
			Value:           *resource.NewQuantity(c.Sessions, resource.DecimalSI),
		})
	}
	return out
}
