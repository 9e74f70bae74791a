package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

func TestHeadlessService(t *testing.T) {
	svc := HeadlessService(newGateway())
	eq(t, "name", svc.Name, "chat-headless")
	eq(t, "clusterIP", svc.Spec.ClusterIP, "None")
	eq(t, "publishNotReadyAddresses", svc.Spec.PublishNotReadyAddresses, true)
	eq(t, "selector", svc.Spec.Selector, selectorLabels(newGateway()))
	eq(t, "ports", svc.Spec.Ports, []corev1.ServicePort{
		{Name: "client", Port: 7000, TargetPort: intstr.FromString("client"), Protocol: corev1.ProtocolTCP},
		{Name: "admin", Port: 9090, TargetPort: intstr.FromString("admin"), Protocol: corev1.ProtocolTCP},
	})
}

func TestClientService(t *testing.T) {
	tests := []struct {
		name        string
		service     v1alpha1.ServiceSpec
		wantType    corev1.ServiceType
		wantPolicy  corev1.ServiceExternalTrafficPolicy
		wantRanges  []string
		annotations map[string]string
	}{
		{
			name:       "load balancer, Local",
			service:    v1alpha1.ServiceSpec{Type: "LoadBalancer", ExternalTrafficPolicy: "Local", LoadBalancerSourceRanges: []string{"10.0.0.0/8"}},
			wantType:   corev1.ServiceTypeLoadBalancer,
			wantPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			wantRanges: []string{"10.0.0.0/8"},
		},
		{
			name:       "node port keeps the policy, has no source ranges",
			service:    v1alpha1.ServiceSpec{Type: "NodePort", ExternalTrafficPolicy: "Cluster"},
			wantType:   corev1.ServiceTypeNodePort,
			wantPolicy: corev1.ServiceExternalTrafficPolicyCluster,
		},
		{
			name:     "cluster IP has no external traffic policy",
			service:  v1alpha1.ServiceSpec{Type: "ClusterIP", ExternalTrafficPolicy: "Local"},
			wantType: corev1.ServiceTypeClusterIP,
		},
		{
			name:        "annotations are listed as managed",
			service:     v1alpha1.ServiceSpec{Type: "LoadBalancer", ExternalTrafficPolicy: "Local", Annotations: map[string]string{"b": "2", "a": "1"}},
			wantType:    corev1.ServiceTypeLoadBalancer,
			wantPolicy:  corev1.ServiceExternalTrafficPolicyLocal,
			annotations: map[string]string{"a": "1", "b": "2", AnnotationManagedAnnotations: "a,b"},
		},
		{
			name:       "empty spec (built in Go) is a Local load balancer",
			wantType:   corev1.ServiceTypeLoadBalancer,
			wantPolicy: corev1.ServiceExternalTrafficPolicyLocal,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway(func(gw *v1alpha1.TCPGateway) { gw.Spec.Service = tt.service; gw.Spec.Port = 443 })
			svc := ClientService(gw)
			eq(t, "name", svc.Name, "chat")
			eq(t, "type", svc.Spec.Type, tt.wantType)
			eq(t, "externalTrafficPolicy", svc.Spec.ExternalTrafficPolicy, tt.wantPolicy)
			eq(t, "loadBalancerSourceRanges", svc.Spec.LoadBalancerSourceRanges, tt.wantRanges)
			eq(t, "ports", svc.Spec.Ports, []corev1.ServicePort{
				{Name: "client", Port: 443, TargetPort: intstr.FromString("client"), Protocol: corev1.ProtocolTCP},
			})
			eq(t, "selector", svc.Spec.Selector, selectorLabels(gw))
			for k, v := range tt.annotations {
				eq(t, "annotation "+k, svc.Annotations[k], v)
			}
			if tt.annotations == nil {
				if _, ok := svc.Annotations[AnnotationManagedAnnotations]; ok {
					t.Error("managed-annotations set without user annotations")
				}
			}
			eq(t, "spec-hash", svc.Annotations[AnnotationSpecHash], specHash(svc.Labels, svc.Annotations, svc.Spec))
		})
	}
}
