package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

func TestGatewayResources(t *testing.T) {
	defaults := config.Limits{}
	defaults.Default()
	small := config.Limits{MaxConnections: 1000}
	small.Default()
	explicit := corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}
	for _, tt := range []struct {
		name                   string
		spec                   corev1.ResourceRequirements
		limits                 config.Limits
		tls, websocket         bool
		cpu, request, limitMem string
	}{
		// 128 MiB + 100000 × 8 KiB = 909.25 MiB; + 10000 × 16 KiB + 195.3 MiB budget, × 5/4.
		{name: "defaults", limits: defaults, cpu: "500m", request: "910Mi", limitMem: "1577Mi"},
		// 128 MiB + 1000 × 8 KiB; + 10000 × 16 KiB + 64 MiB budget (its floor), × 5/4.
		{name: "1000 connections", limits: small, cpu: "500m", request: "136Mi", limitMem: "446Mi"},
		// 128 MiB + 100000 × 32 KiB = 3253 MiB; + 10000 × 40 KiB + 195.3 MiB budget, × 5/4.
		{name: "defaults over TLS", limits: defaults, tls: true, cpu: "500m", request: "3253Mi", limitMem: "4799Mi"},
		// 128 MiB + 100000 × 12 KiB = 1300 MiB; + 10000 × 20 KiB + 195.3 MiB budget, × 5/4.
		{name: "defaults with WebSocket", limits: defaults, websocket: true, cpu: "500m", request: "1300Mi", limitMem: "2114Mi"},
		// Over wss:// a connection costs what a TLS one does.
		{name: "defaults with WebSocket over TLS", limits: defaults, tls: true, websocket: true, cpu: "500m", request: "3253Mi", limitMem: "4799Mi"},
		{name: "spec.resources wins", spec: explicit, limits: defaults, limitMem: "1Gi"},
		{name: "spec.resources wins over TLS", spec: explicit, limits: defaults, tls: true, limitMem: "1Gi"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := GatewayResources(tt.spec, tt.limits, tt.tls, tt.websocket)
			if tt.cpu != "" {
				if q := got.Requests[corev1.ResourceCPU]; q.String() != tt.cpu {
					t.Errorf("cpu request %s, want %s", q.String(), tt.cpu)
				}
			}
			if tt.request != "" {
				if q := got.Requests[corev1.ResourceMemory]; q.String() != tt.request {
					t.Errorf("memory request %s, want %s", q.String(), tt.request)
				}
			}
			if q := got.Limits[corev1.ResourceMemory]; q.String() != tt.limitMem {
				t.Errorf("memory limit %s, want %s", q.String(), tt.limitMem)
			}
			if _, ok := got.Limits[corev1.ResourceCPU]; ok {
				t.Error("a CPU limit was set")
			}
		})
	}
}
