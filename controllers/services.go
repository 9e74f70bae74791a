package controllers

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// HeadlessService gives each gateway pod a stable DNS name (the StatefulSet's serviceName) and
// publishes the client port (and the WebSocket port, when enabled) and the admin port for
// scraping. The admin port is read-only
// (/healthz, /readyz, /metrics, /status; GET and HEAD): what changes a gateway (drain) is on
// the pod-local control socket, and pprof, when enabled, on loopback, so neither is here. It
// publishes pods before they are ready so that a draining or starting pod can still be
// reached by name for /status and /metrics.
func HeadlessService(gw *v1alpha1.TCPGateway) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:      headlessServiceName(gw),
			Namespace: gw.Namespace,
			Labels:    objectLabels(gw),
		},
		Spec: corev1.ServiceSpec{
			Type:                     corev1.ServiceTypeClusterIP,
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 selectorLabels(gw),
			Ports: []corev1.ServicePort{
				{Name: portNameClient, Port: clientPort(gw), TargetPort: intstr.FromString(portNameClient), Protocol: corev1.ProtocolTCP},
				{Name: portNameAdmin, Port: adminPort(gw), TargetPort: intstr.FromString(portNameAdmin), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	svc.Spec.Ports = append(svc.Spec.Ports, websocketServicePorts(gw)...)
	svc.Annotations = map[string]string{AnnotationSpecHash: specHash(svc.Labels, nil, svc.Spec)}
	return svc
}

// websocketServicePorts is the port "websocket" with spec.websocket enabled, else none.
func websocketServicePorts(gw *v1alpha1.TCPGateway) []corev1.ServicePort {
	if !websocketEnabled(gw) {
		return nil
	}
	return []corev1.ServicePort{{Name: portNameWebSocket, Port: websocketPort(gw), TargetPort: intstr.FromString(portNameWebSocket), Protocol: corev1.ProtocolTCP}}
}

// ClientService is what clients connect to: by default a LoadBalancer with
// externalTrafficPolicy Local, which keeps client addresses and only sends traffic to nodes
// that run a ready gateway pod.
func ClientService(gw *v1alpha1.TCPGateway) *corev1.Service {
	s := gw.Spec.Service
	typ := s.Type
	if typ == "" {
		typ = corev1.ServiceTypeLoadBalancer
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:        clientServiceName(gw),
			Namespace:   gw.Namespace,
			Labels:      objectLabels(gw),
			Annotations: maps.Clone(s.Annotations),
		},
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: selectorLabels(gw),
			Ports: []corev1.ServicePort{
				{Name: portNameClient, Port: clientPort(gw), TargetPort: intstr.FromString(portNameClient), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	svc.Spec.Ports = append(svc.Spec.Ports, websocketServicePorts(gw)...)
	// The API server refuses these fields on types they do not apply to.
	if typ != corev1.ServiceTypeClusterIP {
		svc.Spec.ExternalTrafficPolicy = s.ExternalTrafficPolicy
		if svc.Spec.ExternalTrafficPolicy == "" {
			svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}
	}
	if typ == corev1.ServiceTypeLoadBalancer {
		svc.Spec.LoadBalancerSourceRanges = s.LoadBalancerSourceRanges
	}
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	if len(s.Annotations) > 0 {
		svc.Annotations[AnnotationManagedAnnotations] = managedAnnotationsValue(s.Annotations)
	}
	svc.Annotations[AnnotationSpecHash] = specHash(svc.Labels, svc.Annotations, svc.Spec)
	return svc
}
