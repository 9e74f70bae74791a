package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// spec.websocket reaches every object that carries a port: the gateway config, the container,
// both Services and the NetworkPolicy; off (unset or enabled: false), none of them has it.
func TestWebSocketRendering(t *testing.T) {
	wsPort := corev1.ServicePort{Name: "websocket", Port: 8080, TargetPort: intstr.FromString("websocket"), Protocol: corev1.ProtocolTCP}
	tests := []struct {
		name   string
		ws     *v1alpha1.WebSocket
		tls    bool
		want   *config.ListenWebSocket // nil: off everywhere
		policy bool
	}{
		{name: "unset"},
		{name: "disabled", ws: &v1alpha1.WebSocket{Enabled: false, Port: 8080, Path: "/tcpgw"}},
		{
			name: "enabled",
			ws:   &v1alpha1.WebSocket{Enabled: true, Port: 8080, Path: "/ws", AllowedOrigins: []string{"https://app.example.com"}},
			want: &config.ListenWebSocket{Address: ":8080", Path: "/ws", AllowedOrigins: []string{"https://app.example.com"}},
		},
		{
			name:   "enabled with spec.tls: wss with the client port's certificate, and the policy opens it",
			ws:     &v1alpha1.WebSocket{Enabled: true, Port: 8080, Path: "/tcpgw"},
			tls:    true,
			policy: true,
			want: &config.ListenWebSocket{Address: ":8080", Path: "/tcpgw",
				TLS: &config.ListenTLS{CertFile: listenCertFile, KeyFile: listenKeyFile, MinVersion: "1.2"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway(func(gw *v1alpha1.TCPGateway) {
				gw.Spec.WebSocket = tt.ws
				if tt.tls {
					gw.Spec.TLS = &v1alpha1.ListenerTLS{SecretName: "chat-tls", MinVersion: "1.2"}
				}
				if tt.policy {
					gw.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{Enabled: true}
				}
			})
			rc, err := RenderConfig(gw)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "listen.websocket", rc.Config.Listen.WebSocket, tt.want)

			wantPorts := []corev1.ServicePort{}
			wantContainer := []corev1.ContainerPort{}
			if tt.want != nil {
				wantPorts = []corev1.ServicePort{wsPort}
				wantContainer = []corev1.ContainerPort{{Name: "websocket", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}
			}
			eq(t, "client Service ports", ClientService(gw).Spec.Ports[1:], wantPorts)
			eq(t, "headless Service ports", HeadlessService(gw).Spec.Ports[2:], wantPorts)
			eq(t, "container ports", StatefulSet(gw, rc).Spec.Template.Spec.Containers[0].Ports[2:], wantContainer)
			if tt.policy {
				pol := NetworkPolicy(gw, nil)
				eq(t, "policy rule for the WebSocket port (every source)", pol.Spec.Ingress[2:], []networkingv1.NetworkPolicyIngressRule{{
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(8080))}},
				}})
			}
		})
	}
	// Built in Go without the schema's defaults: the gateway's.
	gw := newGateway(func(gw *v1alpha1.TCPGateway) { gw.Spec.WebSocket = &v1alpha1.WebSocket{Enabled: true} })
	rc, err := RenderConfig(gw)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "defaults", *rc.Config.Listen.WebSocket, config.ListenWebSocket{Address: ":7080", Path: "/tcpgw"})
	eq(t, "default port on the Service", ClientService(gw).Spec.Ports[1].Port, int32(7080))
}
