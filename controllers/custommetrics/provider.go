// Package custommetrics serves the custom metrics API (custom.metrics.k8s.io, v1beta2 and
// v1beta1) with one metric: tcpgw_sessions of each gateway pod, the count controllers/sessioncount
// reads from the pod's read-only admin port at each request. The operator's HorizontalPodAutoscaler
// (spec.autoscaling) scales on it.
//
// The server is sigs.k8s.io/custom-metrics-apiserver (the library prometheus-adapter and KEDA
// are built on): a Kubernetes extension API server behind the kube-apiserver's aggregator, which
// authenticates every request by delegation (the aggregator's front-proxy client certificate,
// checked against the requestheader CA the kube-apiserver publishes, or a bearer token through a
// TokenReview) and authorizes it with a SubjectAccessReview (docs/security.md).
package custommetrics

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/controllers/sessioncount"
)

// Counter reads the session counts of pods; *sessioncount.Reader is one.
type Counter interface {
	Read(ctx context.Context, targets []sessioncount.Target) []sessioncount.Count
}

// Provider answers for the gateway pods Pods can list. The operator passes its cache, which
// holds only the pods it labelled (controllers.OwnedCacheOptions): any other pod has no value.
type Provider struct {
	Pods    client.Reader
	Counter Counter
	// PortName is the gateway container's admin port name.
	PortName string
}

var _ provider.CustomMetricsProvider = (*Provider)(nil)

var podsResource = schema.GroupResource{Resource: "pods"}

// ListAllMetrics: tcpgw_sessions of pods.
func (p *Provider) ListAllMetrics() []provider.CustomMetricInfo {
	return []provider.CustomMetricInfo{{GroupResource: podsResource, Namespaced: true, Metric: v1alpha1.AutoscalingMetric}}
}

func supported(info provider.CustomMetricInfo) error {
	if info.GroupResource != podsResource || !info.Namespaced || info.Metric != v1alpha1.AutoscalingMetric {
		return provider.NewMetricNotFoundError(info.GroupResource, info.Metric)
	}
	return nil
}

// GetMetricBySelector reads the pods of namespace that selector selects: what the HPA
// controller asks for, with the scale subresource's selector.
func (p *Provider) GetMetricBySelector(ctx context.Context, namespace string, selector labels.Selector, info provider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValueList, error) {
	if err := supported(info); err != nil {
		return nil, err
	}
	var pods corev1.PodList
	if err := p.Pods.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("while listing pods: %w", err))
	}
	counts := p.Counter.Read(ctx, sessioncount.Targets(pods.Items, p.PortName))
	return &custom_metrics.MetricValueList{Items: Values(namespace, counts, metricSelector)}, nil
}

// GetMetricByName reads one pod.
func (p *Provider) GetMetricByName(ctx context.Context, name types.NamespacedName, info provider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValue, error) {
	if err := supported(info); err != nil {
		return nil, err
	}
	var pod corev1.Pod
	if err := p.Pods.Get(ctx, name, &pod); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, provider.NewMetricNotFoundForError(info.GroupResource, info.Metric, name.Name)
		}
		return nil, apierrors.NewInternalError(fmt.Errorf("while getting pod %s: %w", name.Name, err))
	}
	values := Values(name.Namespace, p.Counter.Read(ctx, sessioncount.Targets([]corev1.Pod{pod}, p.PortName)), metricSelector)
	if len(values) == 0 {
		return nil, provider.NewMetricNotFoundForError(info.GroupResource, info.Metric, name.Name)
	}
	return &values[0], nil
}
