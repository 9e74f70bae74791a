package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// spec.websocket against a real API server: enabled, the port "websocket" appears on the
// client and headless Services and the container, and gateway.yaml gets listen.websocket;
// a changed port follows; disabled, all of it goes.
func (e *env) testWebSocket(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	gw.Spec.WebSocket = &v1alpha1.WebSocket{Enabled: true, AllowedOrigins: []string{"https://app.example.com"}}
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)

	// wsPorts is the WebSocket port of each object ("-" where it has none), and whether
	// gateway.yaml has want in it.
	wsPorts := func(want string) ([]string, error) {
		out := []string{}
		for _, name := range []string{"chat", "chat-headless"} {
			svc := &corev1.Service{}
			if err := e.c.Get(e.ctx(t), client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
				return nil, err
			}
			i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "websocket" })
			if i < 0 {
				out = append(out, "-")
				continue
			}
			p := svc.Spec.Ports[i]
			out = append(out, fmt.Sprintf("%d->%s", p.Port, p.TargetPort.String()))
		}
		sts := &appsv1.StatefulSet{}
		if err := e.c.Get(e.ctx(t), client.ObjectKey{Namespace: ns, Name: "chat"}, sts); err != nil {
			return nil, err
		}
		ports := sts.Spec.Template.Spec.Containers[0].Ports
		if i := slices.IndexFunc(ports, func(p corev1.ContainerPort) bool { return p.Name == "websocket" }); i >= 0 {
			out = append(out, fmt.Sprint(ports[i].ContainerPort))
		} else {
			out = append(out, "-")
		}
		cm := &corev1.ConfigMap{}
		if err := e.c.Get(e.ctx(t), client.ObjectKey{Namespace: ns, Name: configMapName(gw)}, cm); err != nil {
			return nil, err
		}
		if !strings.Contains(cm.Data[ConfigFile], want) {
			return nil, fmt.Errorf("gateway.yaml has no %q:\n%s", want, cm.Data[ConfigFile])
		}
		return out, nil
	}
	expect := func(want []string, inConfig string) {
		t.Helper()
		eventually(t, waitTimeout, func() error {
			got, err := wsPorts(inConfig)
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("WebSocket ports (client Service, headless Service, container) %v, want %v", got, want)
			}
			return nil
		})
	}
	e.waitGateway(t, key, settled)
	expect([]string{"7080->websocket", "7080->websocket", "7080"}, "websocket:\n    address: :7080\n    allowedOrigins:\n    - https://app.example.com\n    path: /tcpgw\n")

	e.update(t, key, func(gw *v1alpha1.TCPGateway) { gw.Spec.WebSocket.Port = 8443 })
	expect([]string{"8443->websocket", "8443->websocket", "8443"}, "address: :8443")

	e.update(t, key, func(gw *v1alpha1.TCPGateway) { gw.Spec.WebSocket.Enabled = false })
	expect([]string{"-", "-", "-"}, "listen:")
	e.waitGateway(t, key, settled)
	got, err := wsPorts("listen:")
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	e.getOwned(t, ns, configMapName(gw), cm)
	if strings.Contains(cm.Data[ConfigFile], "websocket") {
		t.Errorf("gateway.yaml still has websocket after disabling it (%v):\n%s", got, cm.Data[ConfigFile])
	}
}
