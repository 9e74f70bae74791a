package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestMergeMetadata(t *testing.T) {
	tests := []struct {
		name              string
		existing, desired metav1.ObjectMeta
		want              metav1.ObjectMeta
	}{
		{
			name:     "others' labels and annotations stay",
			existing: metav1.ObjectMeta{Labels: map[string]string{"team": "x", "a": "old"}, Annotations: map[string]string{"cloud/status": "ok"}},
			desired:  metav1.ObjectMeta{Labels: map[string]string{"a": "new"}, Annotations: map[string]string{AnnotationSpecHash: "h2"}},
			want:     metav1.ObjectMeta{Labels: map[string]string{"team": "x", "a": "new"}, Annotations: map[string]string{"cloud/status": "ok", AnnotationSpecHash: "h2"}},
		},
		{
			name: "a user annotation removed from the spec is removed",
			existing: metav1.ObjectMeta{Annotations: map[string]string{
				"lb/type": "nlb", "lb/internal": "true", AnnotationManagedAnnotations: "lb/internal,lb/type", "cloud/status": "ok",
			}},
			desired: metav1.ObjectMeta{Annotations: map[string]string{"lb/type": "nlb", AnnotationManagedAnnotations: "lb/type"}},
			want: metav1.ObjectMeta{Labels: map[string]string{}, Annotations: map[string]string{
				"lb/type": "nlb", AnnotationManagedAnnotations: "lb/type", "cloud/status": "ok",
			}},
		},
		{
			name: "all user annotations removed",
			existing: metav1.ObjectMeta{Annotations: map[string]string{
				"lb/type": "nlb", AnnotationManagedAnnotations: "lb/type",
			}},
			desired: metav1.ObjectMeta{Annotations: map[string]string{AnnotationSpecHash: "h"}},
			want:    metav1.ObjectMeta{Labels: map[string]string{}, Annotations: map[string]string{AnnotationSpecHash: "h"}},
		},
		{
			name:     "nil maps",
			existing: metav1.ObjectMeta{},
			desired:  metav1.ObjectMeta{},
			want:     metav1.ObjectMeta{Labels: map[string]string{}, Annotations: map[string]string{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := &corev1.ConfigMap{ObjectMeta: tt.existing}
			mergeMetadata(dst, &corev1.ConfigMap{ObjectMeta: tt.desired})
			eq(t, "labels", dst.Labels, tt.want.Labels)
			eq(t, "annotations", dst.Annotations, tt.want.Annotations)
		})
	}
}

func TestCopyService(t *testing.T) {
	port := func(nodePort int32) []corev1.ServicePort {
		return []corev1.ServicePort{{Name: "client", Port: 7000, TargetPort: intstr.FromString("client"), NodePort: nodePort}}
	}
	allocated := corev1.ServiceSpec{
		Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.0.0.5", ClusterIPs: []string{"10.0.0.5"},
		Ports: port(31000), HealthCheckNodePort: 32000, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
		AllocateLoadBalancerNodePorts: ptr.To(true), SessionAffinity: corev1.ServiceAffinityNone,
	}
	tests := []struct {
		name    string
		desired corev1.ServiceSpec
		want    corev1.ServiceSpec
	}{
		{
			name:    "same type keeps allocations",
			desired: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal, Ports: port(0), LoadBalancerSourceRanges: []string{"10.0.0.0/8"}},
			want: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.0.0.5", ClusterIPs: []string{"10.0.0.5"},
				Ports: port(31000), HealthCheckNodePort: 32000, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
				AllocateLoadBalancerNodePorts: ptr.To(true), SessionAffinity: corev1.ServiceAffinityNone,
				LoadBalancerSourceRanges: []string{"10.0.0.0/8"},
			},
		},
		{
			name:    "Cluster policy drops the health check port",
			desired: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster, Ports: port(0)},
			want: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.0.0.5", ClusterIPs: []string{"10.0.0.5"},
				Ports: port(31000), ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
				AllocateLoadBalancerNodePorts: ptr.To(true), SessionAffinity: corev1.ServiceAffinityNone,
			},
		},
		{
			name:    "ClusterIP drops node ports and load balancer fields, keeps the cluster IP",
			desired: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: port(0)},
			want: corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.0.0.5", ClusterIPs: []string{"10.0.0.5"},
				Ports: port(0), SessionAffinity: corev1.ServiceAffinityNone,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := &corev1.Service{Spec: *allocated.DeepCopy()}
			copyService(dst, &corev1.Service{Spec: tt.desired})
			eq(t, "spec", dst.Spec, tt.want)
		})
	}
}
