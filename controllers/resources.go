package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// The terms of the default resources (docs/operator.md, "Default resources").
const (
	// resourceBaseBytes covers the Go runtime, the Kafka clients, the replay window at
	// typical record sizes and the HTTP clients of the routes.
	resourceBaseBytes = 128 << 20
	// resourceIdleConnectionBytes is the memory of one idle established connection: 7.1 KiB
	// measured with 1 KiB connection buffers (docs/benchmarks.md), rounded up.
	resourceIdleConnectionBytes = 8 << 10
	// resourceIdleTLSConnectionBytes is the same over TLS (spec.tls): 30 KiB of RSS measured
	// (a reader goroutine and crypto/tls's buffers, docs/benchmarks.md), rounded up.
	resourceIdleTLSConnectionBytes = 32 << 10
	// resourceIdleWebSocketConnectionBytes is the same over WebSocket (spec.websocket, without
	// spec.tls): 8.9–11 KiB of RSS measured (a reader goroutine instead of netpoll's buffers,
	// docs/benchmarks.md#websocket), rounded up. Over wss:// a connection is a TLS one with a
	// reader goroutine, as on the TLS port: resourceIdleTLSConnectionBytes.
	resourceIdleWebSocketConnectionBytes = 12 << 10
	// resourceCPURequest: the gateway's CPU follows traffic, not connections; half a core
	// keeps the scheduler from packing pods onto a busy node. No CPU limit is set: throttling
	// a latency-sensitive server at its limit is worse than sharing the node.
	resourceCPURequest = "500m"
)

// GatewayResources is the gateway container's resources: spec.resources when it sets
// anything, otherwise requests and limits derived from the limits the pod runs with and the
// listeners (an idle connection costs 8 KiB, 32 KiB over TLS, 12 KiB over WebSocket; with a
// WebSocket listener any connection may be a WebSocket one, so the larger cost counts):
//
//	request.memory = base + maxConnections × idle connection
//	limit.memory   = 5/4 × (request.memory
//	                 + maxPendingHandshakes × (idle connection + maxHandshakeFrameBytes)
//	                 + outboundBudgetBytes)
//
// The request is a full pod at rest; the limit adds what clients can make it hold on top
// (a frame being read by every pending connection, every outbound byte the budget allows) and
// a quarter for the garbage collector's headroom. Both are rounded up to whole MiB.
func GatewayResources(spec corev1.ResourceRequirements, l config.Limits, tls, websocket bool) corev1.ResourceRequirements {
	if len(spec.Requests) > 0 || len(spec.Limits) > 0 || len(spec.Claims) > 0 {
		return spec
	}
	conn := int64(resourceIdleConnectionBytes)
	switch {
	case tls:
		conn = resourceIdleTLSConnectionBytes
	case websocket:
		conn = resourceIdleWebSocketConnectionBytes
	}
	request := int64(resourceBaseBytes) + int64(l.MaxConnections)*conn
	peak := request +
		int64(l.MaxPendingHandshakes)*(conn+int64(l.MaxHandshakeFrameBytes)) +
		int64(l.OutboundBudgetBytes)
	limit := peak + peak/4
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(resourceCPURequest),
			corev1.ResourceMemory: mebibytes(request),
		},
		Limits: corev1.ResourceList{corev1.ResourceMemory: mebibytes(limit)},
	}
}

// mebibytes rounds n bytes up to whole MiB, as a quantity ("910Mi").
func mebibytes(n int64) resource.Quantity {
	const mib = 1 << 20
	return *resource.NewQuantity((n+mib-1)/mib*mib, resource.BinarySI)
}
