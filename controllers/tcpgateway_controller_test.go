package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// waitTimeout bounds every wait for the operator to react: it reacts to watch events, so on
// a healthy run each wait ends within a few hundred milliseconds.
const waitTimeout = 30 * time.Second

// TestOperator runs the operator against a real kube-apiserver (envtest, which runs no
// controllers: no StatefulSet pods, no load balancers, no garbage collection, so the tests
// play those parts or assert owner references instead) and a real Kafka broker.
func TestOperator(t *testing.T) {
	if testing.Short() {
		t.Skip("needs etcd, kube-apiserver and Kafka")
	}
	e := newEnv(t)
	t.Run("CEL rejects invalid resources", e.testValidation)
	t.Run("schema defaults", e.testDefaults)
	t.Run("second reconcile writes nothing", e.testIdempotent)
	t.Run("owned objects, status and printer columns", e.testOwnedObjects)
	t.Run("spec changes propagate", e.testUpdates)
	t.Run("owned objects edited by hand are restored", e.testDrift)
	t.Run("writes fenced by the leader election Lease", e.testLeaderFence)
	t.Run("a write from a stale read is refused", e.testStaleWriteRefused)
	t.Run("invalid gateway config is Degraded, not rolled out", e.testInvalidConfig)
	t.Run("topics grow and never shrink", e.testPartitions)
	t.Run("Kafka unreachable blocks nothing", e.testKafkaUnreachable)
	t.Run("deletionPolicy Delete deletes the topics", e.testDeletionPolicy)
	t.Run("scale subresource", e.testScale)
	t.Run("client Service changes", e.testServiceChanges)
	t.Run("network policy on, changed and off", e.testNetworkPolicy)
	t.Run("websocket on, changed and off", e.testWebSocket)
	t.Run("autoscaler on, scaling, repaired and off", e.testAutoscaler)
	t.Run("rebalance key Secret made, mounted, never someone else's", e.testRebalanceKey)
	t.Run("crash-looping pods are Degraded", e.testPodsFailing)
	t.Run("Kafka over TLS and SASL, each failure its reason", e.testKafkaSecurity)
	t.Run("topic Events kept apart, operator metrics counted", e.testTopicEventsAndMetrics)
	t.Run("spec.pod collisions with the operator's pod are refused", e.testPodTemplateValidation)
	t.Run("spec.pod and the budget reach the pods", e.testPodTemplate)
	t.Run("spec.pod settles: a second reconcile writes nothing", e.testPodTemplateIdempotent)
	t.Run("samples are accepted", e.testSamples)
}

// gateway is a TCPGateway as a user would write it: only what has no default.
func (e *env) gateway(ns string) *v1alpha1.TCPGateway {
	return &v1alpha1.TCPGateway{
		ObjectMeta: metav1.ObjectMeta{Name: "chat", Namespace: ns},
		Spec: v1alpha1.TCPGatewaySpec{
			Image: "tcpgateway:test",
			Auth: v1alpha1.Auth{JWT: &v1alpha1.JWTAuth{
				SecretRef: v1alpha1.LocalSecretReference{Name: "chat-jwt"}, HS256Key: "hs256.secret",
				Issuer: "https://auth.example.com", Audience: "chat",
			}},
			Routes: []v1alpha1.Route{{Service: "echo", URL: "http://echo:8080/rpc"}},
			Kafka: v1alpha1.Kafka{
				BootstrapServers: []v1alpha1.HostPort{v1alpha1.HostPort(e.bootstrap)},
				Partitions:       3, // fewer than the default: quicker on the test broker
			},
		},
	}
}

// create stores gw and, unless it deletes its topics itself, removes them from the shared
// broker when the test ends.
func (e *env) create(t *testing.T, gw *v1alpha1.TCPGateway) {
	t.Helper()
	if err := e.c.Create(e.ctx(t), gw); err != nil {
		t.Fatalf("create: %v", err)
	}
	down, rcpt := topicNames(gw)
	e.deleteTopicsAtEnd(t, down, rcpt, eventsTopicName(gw))
}

// deleteTopicsAtEnd removes topics from the shared broker when the test ends.
func (e *env) deleteTopicsAtEnd(t *testing.T, topics ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = (&KafkaTopics{}).Delete(ctx, KafkaCluster{Brokers: []string{e.bootstrap}}, topics)
	})
}

// update applies mutate to the stored TCPGateway, retrying on write conflicts.
func (e *env) update(t *testing.T, key types.NamespacedName, mutate func(*v1alpha1.TCPGateway)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		gw := &v1alpha1.TCPGateway{}
		if err := e.c.Get(e.ctx(t), key, gw); err != nil {
			return err
		}
		mutate(gw)
		return e.c.Update(e.ctx(t), gw)
	})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
}

// waitGateway waits until check accepts the stored TCPGateway, and returns it.
func (e *env) waitGateway(t *testing.T, key types.NamespacedName, check func(*v1alpha1.TCPGateway) error) *v1alpha1.TCPGateway {
	t.Helper()
	gw := &v1alpha1.TCPGateway{}
	eventually(t, waitTimeout, func() error {
		if err := e.c.Get(e.ctx(t), key, gw); err != nil {
			return err
		}
		return check(gw)
	})
	return gw
}

// settled: the operator has reconciled the current generation.
func settled(gw *v1alpha1.TCPGateway) error {
	if gw.Status.ObservedGeneration != gw.Generation {
		return fmt.Errorf("observedGeneration %d, generation %d", gw.Status.ObservedGeneration, gw.Generation)
	}
	return nil
}

// hasCondition returns a check for a condition with this status and reason on the current
// generation.
func hasCondition(typ string, status metav1.ConditionStatus, reason string) func(*v1alpha1.TCPGateway) error {
	return func(gw *v1alpha1.TCPGateway) error {
		if err := settled(gw); err != nil {
			return err
		}
		c := meta.FindStatusCondition(gw.Status.Conditions, typ)
		if c == nil || c.Status != status || c.Reason != reason || c.ObservedGeneration != gw.Generation {
			return fmt.Errorf("%s condition is %+v, want %s/%s", typ, c, status, reason)
		}
		return nil
	}
}

// getOwned reads an owned object by name, failing the test when it is missing.
func (e *env) getOwned(t *testing.T, ns, name string, obj client.Object) {
	t.Helper()
	if err := e.c.Get(e.ctx(t), types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("get %T %s: %v", obj, name, err)
	}
}

// warningEvents lists the reasons of the Warning Events about the TCPGateway.
func (e *env) warningEvents(t *testing.T, ns string) []string {
	t.Helper()
	var list eventsv1.EventList
	if err := e.c.List(e.ctx(t), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, ev := range list.Items {
		if ev.Type == corev1.EventTypeWarning && ev.Regarding.Kind == "TCPGateway" {
			reasons = append(reasons, ev.Reason)
		}
	}
	return reasons
}

func (e *env) testValidation(t *testing.T) {
	ns := e.namespace(t)
	tests := []struct {
		name   string
		mutate func(*v1alpha1.TCPGateway)
		want   string
	}{
		{"both jwt and webhook", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Auth.Webhook = &v1alpha1.WebhookAuth{URL: "http://auth/verify"}
		}, "set exactly one of auth.jwt or auth.webhook"},
		{"neither jwt nor webhook", func(gw *v1alpha1.TCPGateway) { gw.Spec.Auth = v1alpha1.Auth{} },
			"set exactly one of auth.jwt or auth.webhook"},
		{"jwt without keys", func(gw *v1alpha1.TCPGateway) { gw.Spec.Auth.JWT.HS256Key = "" },
			"set hs256Key, rs256PublicKey, keySet or several"},
		{"jwt without issuer", func(gw *v1alpha1.TCPGateway) { gw.Spec.Auth.JWT.Issuer = "" },
			"set issuer (the token's iss must equal it) or skipIssuerCheck: true, not both"},
		{"jwt without audience", func(gw *v1alpha1.TCPGateway) { gw.Spec.Auth.JWT.Audience = "" },
			"set audience (the token's aud must contain it) or skipAudienceCheck: true, not both"},
		{"jwt issuer and skipIssuerCheck", func(gw *v1alpha1.TCPGateway) { gw.Spec.Auth.JWT.SkipIssuerCheck = true },
			"set issuer (the token's iss must equal it) or skipIssuerCheck: true, not both"},
		{"jwt keySet sharing a Secret key", func(gw *v1alpha1.TCPGateway) { gw.Spec.Auth.JWT.KeySet = "hs256.secret" },
			"keySet must name a Secret key of its own"},
		{"hardDeadline too short", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Drain = v1alpha1.Drain{DeregistrationDelay: "5s", SpreadWindow: "20s", FlushTimeout: "5s", HardDeadline: "30s"}
		}, "hardDeadline must be longer than deregistrationDelay + spreadWindow + flushTimeout"},
		{"hardDeadline too short for the default spreadWindow", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Drain = v1alpha1.Drain{HardDeadline: "10s"}
		}, "hardDeadline must be longer than"},
		// Zero fields are omitted by the Go types (and then defaulted); these two are sent
		// explicitly, as kubectl would send them, by the raw mutations below.
		{"partitions 0", nil, "spec.kafka.partitions in body should be greater than or equal to 1"},
		{"replicas -1", nil, "spec.replicas in body should be greater than or equal to 0"},
		{"duplicate route service", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Routes = append(gw.Spec.Routes, v1alpha1.Route{Service: "echo", URL: "http://other/rpc"})
		}, `spec.routes[1]: Duplicate value: {"service":"echo"}`},
		{"idleTimeout equal to heartbeatInterval", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Limits.HeartbeatInterval, gw.Spec.Limits.IdleTimeout = "30s", "30s"
		}, "idleTimeout must be longer than heartbeatInterval"},
		{"idleTimeout shorter than the default heartbeatInterval", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Limits.IdleTimeout = "10s"
		}, "idleTimeout must be longer than heartbeatInterval"},
		{"outbound queue smaller than a frame", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Limits.MaxFrameBytes, gw.Spec.Limits.OutboundQueueBytes = 1<<20, 1000
		}, "outboundQueueBytes must be at least maxFrameBytes"},
		{"frame limit above 16 MiB", func(gw *v1alpha1.TCPGateway) { gw.Spec.Limits.MaxFrameBytes = 32 << 20 },
			"spec.limits.maxFrameBytes in body should be less than or equal to 16777216"},
		{"zero duration", func(gw *v1alpha1.TCPGateway) { gw.Spec.Limits.HandshakeTimeout = "0s" },
			"spec.limits.handshakeTimeout: Invalid value: \"0s\": must be a positive duration"},
		{"not a duration", func(gw *v1alpha1.TCPGateway) { gw.Spec.Routes[0].Timeout = "5 seconds" },
			"spec.routes[0].timeout in body should match"},
		{"zero request rate", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Limits.RequestsPerSecond = ptr.To(resourceQuantity("0"))
		}, "must be a positive quantity"},
		{"route URL with a query", func(gw *v1alpha1.TCPGateway) { gw.Spec.Routes[0].URL = "http://echo/rpc?x=1" },
			"must not have a query or fragment"},
		{"route URL not http", func(gw *v1alpha1.TCPGateway) { gw.Spec.Routes[0].URL = "grpc://echo:9000" },
			"must be an absolute http:// or https:// URL"},
		{"no bootstrap servers", func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.BootstrapServers = nil },
			"spec.kafka.bootstrapServers: Required value"},
		{"bootstrap port out of range", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Kafka.BootstrapServers = []v1alpha1.HostPort{"kafka:70000"}
		}, "port must be at most 65535"},
		{"same topic twice", func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.DownlinkTopic, gw.Spec.Kafka.ReceiptsTopic = "t", "t" },
			"downlinkTopic and receiptsTopic must differ"},
		{"expiry heartbeat not shorter than the session timeout", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Kafka.Expiry = v1alpha1.KafkaExpiry{SessionTimeout: "10s", HeartbeatInterval: "10s"}
		}, "spec.kafka.expiry: Invalid value: heartbeatInterval must be shorter than sessionTimeout"},
		{"expiry session timeout below the default heartbeat", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Kafka.Expiry = v1alpha1.KafkaExpiry{SessionTimeout: "400ms"}
		}, "heartbeatInterval must be shorter than sessionTimeout"},
		{"expiry maxEntries 0", nil, "spec.kafka.expiry.maxEntries in body should be greater than or equal to 1"},
		{"port equals adminPort", func(gw *v1alpha1.TCPGateway) { gw.Spec.Port, gw.Spec.AdminPort = 9000, 9000 },
			"port and adminPort must differ"},
		{"websocket port equals port", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.WebSocket = &v1alpha1.WebSocket{Enabled: true, Port: 7000}
		}, "websocket.port must differ from port and adminPort"},
		{"websocket default port equals adminPort", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.AdminPort = 7080
			gw.Spec.WebSocket = &v1alpha1.WebSocket{Enabled: true}
		}, "websocket.port must differ from port and adminPort"},
		{"websocket path without a slash", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.WebSocket = &v1alpha1.WebSocket{Enabled: true, Path: "tcpgw"}
		}, "spec.websocket.path in body should match"},
		{"websocket path with a query", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.WebSocket = &v1alpha1.WebSocket{Enabled: true, Path: "/tcpgw?x=1"}
		}, "spec.websocket.path in body should match"},
		{"websocket origin wildcard", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.WebSocket = &v1alpha1.WebSocket{Enabled: true, AllowedOrigins: []string{"*"}}
		}, "spec.websocket.allowedOrigins[0] in body should match"},
		{"websocket origin with a path", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.WebSocket = &v1alpha1.WebSocket{Enabled: true, AllowedOrigins: []string{"https://app.example.com/"}}
		}, "spec.websocket.allowedOrigins[0] in body should match"},
		{"source ranges on a ClusterIP Service", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Service = v1alpha1.ServiceSpec{Type: "ClusterIP", LoadBalancerSourceRanges: []string{"10.0.0.0/8"}}
		}, "loadBalancerSourceRanges only applies to type LoadBalancer"},
		{"source range not a CIDR", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Service.LoadBalancerSourceRanges = []string{"10.0.0.1"}
		}, "must be CIDRs such as 203.0.113.0/24"},
		{"SASL PLAIN without TLS", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Kafka.SASL = &v1alpha1.KafkaSASL{Mechanism: v1alpha1.SASLPlain, SecretRef: v1alpha1.LocalSecretReference{Name: "kafka-user"}}
		}, "sasl.mechanism PLAIN sends the password as it is: set kafka.tls too"},
		{"SASL mechanism unknown", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Kafka.SASL = &v1alpha1.KafkaSASL{Mechanism: "GSSAPI", SecretRef: v1alpha1.LocalSecretReference{Name: "kafka-user"}}
		}, `spec.kafka.sasl.mechanism: Unsupported value: "GSSAPI"`},
		{"listener TLS 1.1", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.TLS = &v1alpha1.ListenerTLS{SecretName: "chat-tls", MinVersion: "1.1"}
		}, `spec.tls.minVersion: Unsupported value: "1.1"`},
		{"webhook CA bundle from both a ConfigMap and a Secret", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Auth = v1alpha1.Auth{Webhook: &v1alpha1.WebhookAuth{URL: "https://auth/verify", CABundle: &v1alpha1.CABundle{
				ConfigMapRef: &v1alpha1.ConfigMapKeyReference{Name: "ca", Key: "ca.crt"},
				SecretRef:    &v1alpha1.SecretKeyReference{Name: "ca", Key: "ca.crt"},
			}}}
		}, "set exactly one of configMapRef or secretRef"},
		{"webhook CA bundle with neither", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Auth = v1alpha1.Auth{Webhook: &v1alpha1.WebhookAuth{URL: "https://auth/verify", CABundle: &v1alpha1.CABundle{}}}
		}, "set exactly one of configMapRef or secretRef"},
		{"webhook CA bundle for an http URL", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Auth = v1alpha1.Auth{Webhook: &v1alpha1.WebhookAuth{URL: "http://auth/verify", CABundle: &v1alpha1.CABundle{
				ConfigMapRef: &v1alpha1.ConfigMapKeyReference{Name: "ca", Key: "ca.crt"},
			}}}
		}, "caBundle only applies to an https:// url"},
		{"Kafka TLS server name with a path", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Kafka.TLS = &v1alpha1.KafkaTLS{ServerName: "kafka/x"}
		}, "spec.kafka.tls.serverName in body should match"},
		{"autoscaling min above max", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Autoscaling = &v1alpha1.Autoscaling{MinReplicas: 5, MaxReplicas: 4, TargetConnectionsPerPod: 100}
		}, "spec.autoscaling: Invalid value: minReplicas must be at most maxReplicas"},
		{"autoscaling default min above max", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Autoscaling = &v1alpha1.Autoscaling{MaxReplicas: 1, TargetConnectionsPerPod: 100}
		}, "minReplicas must be at most maxReplicas"},
		{"autoscaling without a target", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Autoscaling = &v1alpha1.Autoscaling{MaxReplicas: 4}
		}, "spec.autoscaling.targetConnectionsPerPod in body should be greater than or equal to 1"},
		{"autoscaling stabilization above an hour", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Autoscaling = &v1alpha1.Autoscaling{MaxReplicas: 4, TargetConnectionsPerPod: 100, ScaleDownStabilizationSeconds: ptr.To[int32](3601)}
		}, "spec.autoscaling.scaleDownStabilizationSeconds in body should be less than or equal to 3600"},
		{"autoscaling minReplicas 0", nil, "spec.autoscaling.minReplicas in body should be greater than or equal to 1"},
		{"rebalance maxImbalance 0%", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Rebalance = &v1alpha1.Rebalance{Enabled: true, MaxImbalance: "0%"}
		}, "spec.rebalance.maxImbalance in body should match"},
		{"rebalance maxImbalance without %", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Rebalance = &v1alpha1.Rebalance{Enabled: true, MaxImbalance: "20"}
		}, "spec.rebalance.maxImbalance in body should match"},
		{"rebalance rate above 10000", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Rebalance = &v1alpha1.Rebalance{Enabled: true, Rate: 10001}
		}, "spec.rebalance.rate in body should be less than or equal to 10000"},
		{"rebalance interval 500ms", func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Rebalance = &v1alpha1.Rebalance{Enabled: true, Interval: "500ms"}
		}, "must be a duration from 1s to 1h"},
		{"name too long", func(gw *v1alpha1.TCPGateway) { gw.Name = strings.Repeat("a", 53) },
			"metadata.name must be at most 52 characters"},
		{"name not a DNS-1035 label", func(gw *v1alpha1.TCPGateway) { gw.Name = "1chat" },
			"metadata.name must start with a letter"},
	}
	raw := map[string]func(*unstructured.Unstructured) error{
		"partitions 0": func(u *unstructured.Unstructured) error {
			return unstructured.SetNestedField(u.Object, int64(0), "spec", "kafka", "partitions")
		},
		"expiry maxEntries 0": func(u *unstructured.Unstructured) error {
			return unstructured.SetNestedField(u.Object, int64(0), "spec", "kafka", "expiry", "maxEntries")
		},
		"autoscaling minReplicas 0": func(u *unstructured.Unstructured) error {
			return unstructured.SetNestedField(u.Object, map[string]any{"minReplicas": int64(0), "maxReplicas": int64(3), "targetConnectionsPerPod": int64(10)}, "spec", "autoscaling")
		},
		"replicas -1": func(u *unstructured.Unstructured) error {
			return unstructured.SetNestedField(u.Object, int64(-1), "spec", "replicas")
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := e.gateway(ns)
			if tt.mutate != nil {
				tt.mutate(gw)
			}
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(gw)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: obj}
			u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("TCPGateway"))
			if f := raw[tt.name]; f != nil {
				if err := f(u); err != nil {
					t.Fatal(err)
				}
			}
			err = e.c.Create(e.ctx(t), u)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create = %v, want Invalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
	// The base object itself is valid.
	if err := e.c.Create(e.ctx(t), e.gateway(ns), client.DryRunAll); err != nil {
		t.Fatalf("valid object refused: %v", err)
	}
}

// The API server fills every default, and they are the gateway's.
func (e *env) testDefaults(t *testing.T) {
	ns := e.namespace(t)
	gw := e.gateway(ns)
	if err := e.c.Create(e.ctx(t), gw, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	s := gw.Spec
	eq(t, "replicas", *s.Replicas, int32(2))
	eq(t, "ports", []int32{s.Port, s.AdminPort}, []int32{7000, 9090})
	eq(t, "limits", s.Limits, v1alpha1.Limits{
		MaxConnections: 100000, MaxFrameBytes: 65536, HandshakeTimeout: "5s", HeartbeatInterval: "30s",
		IdleTimeout: "90s", RequestsPerSecond: ptr.To(resourceQuantity("50")), RequestBurst: 100,
		OutboundQueueFrames: 1024, OutboundQueueBytes: 1048576, UplinkWorkers: 256,
		MaxPendingHandshakes: 10000, MaxHandshakeFrameBytes: 8192,
		PerAddress:     v1alpha1.AddressLimits{MaxConnections: 1000, HandshakesPerSecond: ptr.To(resourceQuantity("50")), HandshakeBurst: 1000},
		PendingAnswers: 128, RefusedAnswers: 16,
	})
	eq(t, "jwt claims", []string{s.Auth.JWT.UserClaim, s.Auth.JWT.GroupsClaim, string(s.Auth.JWT.Leeway)}, []string{"sub", "groups", "30s"})
	eq(t, "token refresh", []v1alpha1.Duration{s.Auth.RefreshLead, s.Auth.RefreshGrace}, []v1alpha1.Duration{"1m", "30s"})
	eq(t, "route", s.Routes[0], v1alpha1.Route{Service: "echo", URL: "http://echo:8080/rpc", Timeout: "5s", MaxInFlight: 1024})
	eq(t, "drain", s.Drain, v1alpha1.Drain{DeregistrationDelay: "5s", SpreadWindow: "20s", FlushTimeout: "5s", HardDeadline: "45s"})
	eq(t, "kafka", []any{s.Kafka.ReplicationFactor, s.Kafka.Retention, s.Kafka.DeletionPolicy},
		[]any{int32(3), v1alpha1.Duration("24h"), v1alpha1.TopicDeletionRetain})
	eq(t, "kafka.expiry", s.Kafka.Expiry, v1alpha1.KafkaExpiry{SessionTimeout: "6s", HeartbeatInterval: "500ms", RebalanceTimeout: "10s"})
	eq(t, "service", s.Service, v1alpha1.ServiceSpec{Type: "LoadBalancer", ExternalTrafficPolicy: "Local"})
	eq(t, "no TLS, no SASL", []any{s.TLS, s.Kafka.TLS, s.Kafka.SASL}, []any{(*v1alpha1.ListenerTLS)(nil), (*v1alpha1.KafkaTLS)(nil), (*v1alpha1.KafkaSASL)(nil)})
	eq(t, "no websocket", s.WebSocket, (*v1alpha1.WebSocket)(nil))

	secured := e.gateway(ns)
	secured.Spec.TLS = &v1alpha1.ListenerTLS{SecretName: "chat-tls"}
	secured.Spec.WebSocket = &v1alpha1.WebSocket{Enabled: true}
	secured.Spec.Kafka.TLS = &v1alpha1.KafkaTLS{ClientCertificate: &v1alpha1.ClientCertificate{SecretName: "kafka-user"}}
	secured.Spec.Kafka.SASL = &v1alpha1.KafkaSASL{SecretRef: v1alpha1.LocalSecretReference{Name: "kafka-user"}}
	if err := e.c.Create(e.ctx(t), secured, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	eq(t, "tls", *secured.Spec.TLS, v1alpha1.ListenerTLS{SecretName: "chat-tls", MinVersion: "1.2"})
	eq(t, "websocket", *secured.Spec.WebSocket, v1alpha1.WebSocket{Enabled: true, Port: 7080, Path: "/tcpgw"})
	eq(t, "kafka.tls", *secured.Spec.Kafka.TLS, v1alpha1.KafkaTLS{ClientCertificate: &v1alpha1.ClientCertificate{
		SecretName: "kafka-user", CertificateKey: "tls.crt", PrivateKeyKey: "tls.key"}})
	eq(t, "kafka.sasl", *secured.Spec.Kafka.SASL, v1alpha1.KafkaSASL{Mechanism: v1alpha1.SASLScramSHA512,
		SecretRef: v1alpha1.LocalSecretReference{Name: "kafka-user"}, UsernameKey: "username", PasswordKey: "password"})
}

// A reconcile with nothing to do makes no API writes at all, counted at the client.
func (e *env) testIdempotent(t *testing.T) {
	ns := e.namespace(t)
	gw := e.gateway(ns)
	gw.Spec.Kafka.DeletionPolicy = v1alpha1.TopicDeletionDelete // the finalizer path too
	e.create(t, gw)

	live, err := client.NewWithWatch(e.cfg, client.Options{Scheme: e.scheme})
	if err != nil {
		t.Fatal(err)
	}
	var writes writeCounter
	rec := events.NewFakeRecorder(100)
	r := e.reconciler(writes.wrap(live), rec)
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(gw)}
	reconcile := func(what string) int64 {
		t.Helper()
		writes.n.Store(0)
		res, err := r.Reconcile(e.ctx(t), req)
		if err != nil || res != (ctrl.Result{}) {
			t.Fatalf("%s reconcile = %+v, %v", what, res, err)
		}
		return writes.n.Load()
	}

	// finalizer, ConfigMap, 2 Services, StatefulSet, PDB, status
	if n := reconcile("first"); n != 7 {
		t.Errorf("first reconcile made %d writes, want 7", n)
	}
	if n := reconcile("second"); n != 0 {
		t.Errorf("second reconcile made %d writes, want 0", n)
	}

	// The world changes (pods ready, load balancer address): one status write, then quiet.
	e.simulateReady(t, ns, gw.Name, 2, "203.0.113.20")
	if n := reconcile("after pods became ready"); n != 1 {
		t.Errorf("reconcile after the pods became ready made %d writes, want 1 (status)", n)
	}
	if n := reconcile("next"); n != 0 {
		t.Errorf("next reconcile made %d writes, want 0", n)
	}
	drained := 0
	for len(rec.Events) > 0 {
		ev := <-rec.Events
		drained++
		if !strings.HasPrefix(ev, "Normal TopicCreated") {
			t.Errorf("unexpected event %q", ev)
		}
	}
	if drained != 3 {
		t.Errorf("%d events, want 3 (one TopicCreated per topic: downlink, receipts, session events)", drained)
	}
}

// simulateReady plays the StatefulSet controller (ready pods at one revision) and the cloud
// load balancer (an ingress IP), which envtest does not run.
func (e *env) simulateReady(t *testing.T, ns, name string, ready int32, ip string) {
	t.Helper()
	ctx := e.ctx(t)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sts := &appsv1.StatefulSet{}
		if err := e.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, sts); err != nil {
			return err
		}
		sts.Status = appsv1.StatefulSetStatus{
			ObservedGeneration: sts.Generation, Replicas: ready, ReadyReplicas: ready, CurrentReplicas: ready,
			UpdatedReplicas: ready, AvailableReplicas: ready, CurrentRevision: name + "-1", UpdateRevision: name + "-1",
		}
		return e.c.Status().Update(ctx, sts)
	})
	if err != nil {
		t.Fatalf("StatefulSet status: %v", err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc := &corev1.Service{}
		if err := e.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, svc); err != nil {
			return err
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		return e.c.Status().Update(ctx, svc)
	})
	if err != nil {
		t.Fatalf("Service status: %v", err)
	}
}

func (e *env) testOwnedObjects(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)

	gw = e.waitGateway(t, key, hasCondition(v1alpha1.ConditionKafkaReady, "True", v1alpha1.ReasonTopicsReady))
	if len(gw.Finalizers) != 0 {
		t.Errorf("finalizers %v with deletionPolicy Retain, want none", gw.Finalizers)
	}

	cm, headless, client_, sts, pdb := &corev1.ConfigMap{}, &corev1.Service{}, &corev1.Service{}, &appsv1.StatefulSet{}, &policyv1.PodDisruptionBudget{}
	e.getOwned(t, ns, "chat-config", cm)
	e.getOwned(t, ns, "chat-headless", headless)
	e.getOwned(t, ns, "chat", client_)
	e.getOwned(t, ns, "chat", sts)
	e.getOwned(t, ns, "chat", pdb)
	// envtest has no garbage collector: the owner references are what makes deletion work.
	for _, obj := range []client.Object{cm, headless, client_, sts, pdb} {
		ref := metav1.GetControllerOf(obj)
		if ref == nil || ref.UID != gw.UID || ref.Kind != "TCPGateway" || ref.APIVersion != "tcpgateway.io/v1alpha1" || !ptr.Deref(ref.BlockOwnerDeletion, false) {
			t.Errorf("%T %s: controller reference %+v, want TCPGateway %s", obj, obj.GetName(), ref, gw.UID)
		}
		if obj.GetLabels()[LabelManagedBy] != ManagedBy || obj.GetAnnotations()[AnnotationSpecHash] == "" {
			t.Errorf("%T %s: labels %v annotations %v", obj, obj.GetName(), obj.GetLabels(), obj.GetAnnotations())
		}
	}
	if !strings.Contains(cm.Data[ConfigFile], "downlinkTopic: "+ns+".chat.downlink") {
		t.Errorf("gateway.yaml:\n%s", cm.Data[ConfigFile])
	}
	eq(t, "headless clusterIP", headless.Spec.ClusterIP, "None")
	eq(t, "client Service type", client_.Spec.Type, corev1.ServiceTypeLoadBalancer)
	eq(t, "client Service policy", client_.Spec.ExternalTrafficPolicy, corev1.ServiceExternalTrafficPolicyLocal)
	eq(t, "sts replicas", *sts.Spec.Replicas, int32(2))
	eq(t, "sts serviceName", sts.Spec.ServiceName, "chat-headless")
	eq(t, "sts config-hash", sts.Spec.Template.Annotations[AnnotationConfigHash] != "", true)
	eq(t, "sts grace", *sts.Spec.Template.Spec.TerminationGracePeriodSeconds, int64(55))
	eq(t, "pdb maxUnavailable", pdb.Spec.MaxUnavailable.IntValue(), 1)

	// The topics exist on the broker with the requested partitions. The broker's metadata can
	// lag behind a topic's creation (seen under load: no partitions yet), hence the wait.
	eventually(t, waitTimeout, func() error {
		for _, topic := range []string{ns + ".chat.downlink", ns + ".chat.receipts", ns + ".chat.session-events"} {
			if n, ret := describeTopic(t, e.bootstrap, topic); n != 3 || ret != "86400000" {
				return fmt.Errorf("topic %s: %d partitions, retention.ms %s; want 3, 86400000", topic, n, ret)
			}
		}
		return nil
	})

	// Before any pod is ready.
	eq(t, "status.kafka", gw.Status.Kafka, &v1alpha1.KafkaStatus{DownlinkTopic: ns + ".chat.downlink", ReceiptsTopic: ns + ".chat.receipts",
		EventsTopic: ns + ".chat.session-events", Partitions: 3})
	eq(t, "status.selector", gw.Status.Selector, "app.kubernetes.io/instance=chat,app.kubernetes.io/name=tcpgateway")
	eq(t, "status.readyText", gw.Status.ReadyText, "0/2")
	for typ, reason := range map[string]string{
		v1alpha1.ConditionReady: v1alpha1.ReasonReplicasNotReady, v1alpha1.ConditionProgressing: v1alpha1.ReasonRollingOut,
		v1alpha1.ConditionDegraded: v1alpha1.ReasonAsExpected,
	} {
		if c := meta.FindStatusCondition(gw.Status.Conditions, typ); c == nil || c.Reason != reason {
			t.Errorf("%s = %+v, want reason %s", typ, c, reason)
		}
	}

	// Pods become ready and the load balancer gets an address.
	e.simulateReady(t, ns, "chat", 2, "203.0.113.10")
	gw = e.waitGateway(t, key, hasCondition(v1alpha1.ConditionReady, "True", v1alpha1.ReasonReplicasReady))
	eq(t, "status.address", gw.Status.Address, "203.0.113.10")
	eq(t, "status.readyReplicas", gw.Status.ReadyReplicas, int32(2))
	eq(t, "status.replicas", gw.Status.Replicas, int32(2))
	if c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionProgressing); c == nil || c.Status != "False" {
		t.Errorf("Progressing = %+v, want False", c)
	}
	cols := e.printerColumns(t, ns, "chat")
	for col, want := range map[string]string{"Ready": "2/2", "Address": "203.0.113.10", "Kafka": "True"} {
		if cols[col] != want {
			t.Errorf("column %s = %q, want %q (all: %v)", col, cols[col], want, cols)
		}
	}
	if _, ok := cols["Age"]; !ok {
		t.Errorf("no Age column: %v", cols)
	}
}

func (e *env) testUpdates(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)
	e.waitGateway(t, key, hasCondition(v1alpha1.ConditionKafkaReady, "True", v1alpha1.ReasonTopicsReady))

	sts := &appsv1.StatefulSet{}
	e.getOwned(t, ns, "chat", sts)
	hash0 := sts.Spec.Template.Annotations[AnnotationConfigHash]

	// A route change reaches the ConfigMap and rolls the pods through the config hash.
	e.update(t, key, func(gw *v1alpha1.TCPGateway) {
		gw.Spec.Routes = append(gw.Spec.Routes, v1alpha1.Route{Service: "presence", URL: "http://presence:8080", H2C: true})
	})
	e.waitGateway(t, key, settled)
	cm := &corev1.ConfigMap{}
	e.getOwned(t, ns, "chat-config", cm)
	if !strings.Contains(cm.Data[ConfigFile], "service: presence") {
		t.Errorf("gateway.yaml has no presence route:\n%s", cm.Data[ConfigFile])
	}
	e.getOwned(t, ns, "chat", sts)
	hash1 := sts.Spec.Template.Annotations[AnnotationConfigHash]
	if hash1 == hash0 {
		t.Error("the route change did not change the pod template's config hash")
	}
	if hash1 != hashOf(cm.Data[ConfigFile]) {
		t.Error("the pod template's config hash is not the hash of the ConfigMap's content")
	}

	// Image, replicas and drain reach the StatefulSet.
	e.update(t, key, func(gw *v1alpha1.TCPGateway) {
		gw.Spec.Image = "tcpgateway:v2"
		gw.Spec.Replicas = ptr.To[int32](5)
		gw.Spec.Drain.HardDeadline = "2m"
	})
	e.waitGateway(t, key, settled)
	e.getOwned(t, ns, "chat", sts)
	eq(t, "image", sts.Spec.Template.Spec.Containers[0].Image, "tcpgateway:v2")
	eq(t, "replicas", *sts.Spec.Replicas, int32(5))
	eq(t, "grace", *sts.Spec.Template.Spec.TerminationGracePeriodSeconds, int64(130))
	if sts.Spec.Template.Annotations[AnnotationConfigHash] == hash1 {
		t.Error("the drain change did not change the config hash")
	}
	gw = e.waitGateway(t, key, settled)
	eq(t, "readyText", gw.Status.ReadyText, "0/5")

	// A renamed events topic is created, rendered for the pods and named in the status.
	events := ns + ".presence"
	e.deleteTopicsAtEnd(t, events)
	e.update(t, key, func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.EventsTopic = events })
	e.waitGateway(t, key, func(gw *v1alpha1.TCPGateway) error {
		if err := settled(gw); err != nil {
			return err
		}
		if gw.Status.Kafka == nil || gw.Status.Kafka.EventsTopic != events {
			return fmt.Errorf("status.kafka %+v, want eventsTopic %s", gw.Status.Kafka, events)
		}
		return nil
	})
	// The broker's metadata can lag behind a topic's creation (see testOwnedObjects).
	eventually(t, waitTimeout, func() error {
		if n, _ := describeTopic(t, e.bootstrap, events); n != 3 {
			return fmt.Errorf("topic %s: %d partitions on the broker, want 3", events, n)
		}
		return nil
	})
	e.getOwned(t, ns, "chat-config", cm)
	if !strings.Contains(cm.Data[ConfigFile], "eventsTopic: "+events) {
		t.Errorf("gateway.yaml does not name the renamed events topic:\n%s", cm.Data[ConfigFile])
	}
}

func (e *env) testInvalidConfig(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)
	e.waitGateway(t, key, hasCondition(v1alpha1.ConditionDegraded, "False", v1alpha1.ReasonAsExpected))
	cm0, sts0 := &corev1.ConfigMap{}, &appsv1.StatefulSet{}
	e.getOwned(t, ns, "chat-config", cm0)
	e.getOwned(t, ns, "chat", sts0)

	// Admission cannot know the default receipts topic (it depends on the namespace), so this
	// passes CEL; the gateway would refuse it.
	e.update(t, key, func(gw *v1alpha1.TCPGateway) {
		gw.Spec.Kafka.DownlinkTopic = ns + ".chat.receipts"
		gw.Spec.Image = "tcpgateway:v2"
	})
	gw = e.waitGateway(t, key, hasCondition(v1alpha1.ConditionDegraded, "True", v1alpha1.ReasonInvalidConfig))
	c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionDegraded)
	if !strings.Contains(c.Message, "kafka.receiptsTopic: must differ from kafka.downlinkTopic") {
		t.Errorf("Degraded message %q", c.Message)
	}
	cm, sts := &corev1.ConfigMap{}, &appsv1.StatefulSet{}
	e.getOwned(t, ns, "chat-config", cm)
	e.getOwned(t, ns, "chat", sts)
	eq(t, "ConfigMap", cm.Data, cm0.Data)
	eq(t, "StatefulSet spec (not rolled onto a refused config)", sts.Spec.Template.Spec.Containers[0].Image, "tcpgateway:test")
	eventually(t, waitTimeout, func() error {
		for _, r := range e.warningEvents(t, ns) {
			if r == v1alpha1.ReasonInvalidConfig {
				return nil
			}
		}
		return errors.New("no InvalidConfig Warning Event")
	})

	// Fixed: applied, rolled, no longer degraded.
	e.update(t, key, func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.DownlinkTopic = "" })
	e.waitGateway(t, key, hasCondition(v1alpha1.ConditionDegraded, "False", v1alpha1.ReasonAsExpected))
	e.getOwned(t, ns, "chat", sts)
	eq(t, "image after the fix", sts.Spec.Template.Spec.Containers[0].Image, "tcpgateway:v2")
}

func (e *env) testPartitions(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)
	topics := []string{ns + ".chat.downlink", ns + ".chat.receipts", ns + ".chat.session-events"}

	for _, step := range []struct {
		spec, want int32
	}{
		{3, 3}, // created
		{5, 5}, // grown
		{2, 5}, // never shrunk
	} {
		e.update(t, key, func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.Partitions = step.spec })
		gw = e.waitGateway(t, key, func(gw *v1alpha1.TCPGateway) error {
			if err := hasCondition(v1alpha1.ConditionKafkaReady, "True", v1alpha1.ReasonTopicsReady)(gw); err != nil {
				return err
			}
			if gw.Status.Kafka == nil || gw.Status.Kafka.Partitions != step.want {
				return fmt.Errorf("status.kafka %+v, want %d partitions", gw.Status.Kafka, step.want)
			}
			return nil
		})
		if c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionKafkaReady); !strings.Contains(c.Message, fmt.Sprintf("have %d partitions", step.want)) {
			t.Errorf("spec %d: KafkaReady message %q", step.spec, c.Message)
		}
		for _, topic := range topics {
			if n, _ := describeTopic(t, e.bootstrap, topic); n != int(step.want) {
				t.Errorf("spec %d: topic %s has %d partitions on the broker, want %d", step.spec, topic, n, step.want)
			}
		}
	}
}

// Kafka down does not hold back the Kubernetes objects; Kafka back (here: pointing the
// bootstrap address at the real broker, since the shared broker cannot be stopped and
// restarted under other tests) clears the condition.
func (e *env) testKafkaUnreachable(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	gw.Spec.Kafka.BootstrapServers = []v1alpha1.HostPort{v1alpha1.HostPort(closedAddr(t))}
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)

	gw = e.waitGateway(t, key, hasCondition(v1alpha1.ConditionKafkaReady, "False", v1alpha1.ReasonKafkaUnreachable))
	if c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionKafkaReady); !strings.Contains(c.Message, "connection refused") {
		t.Errorf("KafkaReady message %q", c.Message)
	}
	if c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionDegraded); c == nil || c.Status != "False" {
		t.Errorf("Degraded = %+v, want False: Kafka is reported by KafkaReady alone", c)
	}
	for name, obj := range map[string]client.Object{
		"chat-config": &corev1.ConfigMap{}, "chat-headless": &corev1.Service{}, "chat": &appsv1.StatefulSet{},
	} {
		e.getOwned(t, ns, name, obj)
	}
	e.getOwned(t, ns, "chat", &corev1.Service{})
	e.getOwned(t, ns, "chat", &policyv1.PodDisruptionBudget{})
	eventually(t, waitTimeout, func() error {
		for _, r := range e.warningEvents(t, ns) {
			if r == v1alpha1.ReasonKafkaUnreachable {
				return nil
			}
		}
		return errors.New("no KafkaUnreachable Warning Event")
	})

	e.update(t, key, func(gw *v1alpha1.TCPGateway) {
		gw.Spec.Kafka.BootstrapServers = []v1alpha1.HostPort{v1alpha1.HostPort(e.bootstrap)}
	})
	gw = e.waitGateway(t, key, hasCondition(v1alpha1.ConditionKafkaReady, "True", v1alpha1.ReasonTopicsReady))
	eq(t, "partitions", gw.Status.Kafka.Partitions, int32(3))
}

func (e *env) testDeletionPolicy(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	gw.Spec.Kafka.DeletionPolicy = v1alpha1.TopicDeletionDelete
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)
	gw = e.waitGateway(t, key, hasCondition(v1alpha1.ConditionKafkaReady, "True", v1alpha1.ReasonTopicsReady))
	eq(t, "finalizers", gw.Finalizers, []string{FinalizerTopics})
	topic := ns + ".chat.downlink"
	// The broker's metadata can lag behind the topic's creation (see testOwnedObjects).
	eventually(t, waitTimeout, func() error {
		if n, _ := describeTopic(t, e.bootstrap, topic); n != 3 {
			return fmt.Errorf("topic %s has %d partitions, want 3", topic, n)
		}
		return nil
	})

	if err := e.c.Delete(e.ctx(t), gw); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitTimeout, func() error {
		err := e.c.Get(e.ctx(t), key, &v1alpha1.TCPGateway{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("TCPGateway still there: %v", err)
	})
	// Kafka deletes asynchronously; the metadata shows it soon after.
	eventually(t, waitTimeout, func() error {
		for _, topic := range []string{ns + ".chat.downlink", ns + ".chat.receipts"} {
			if n, _ := describeTopic(t, e.bootstrap, topic); n != 0 {
				return fmt.Errorf("topic %s still has %d partitions", topic, n)
			}
		}
		return nil
	})
}

// The scale subresource (what kubectl scale and a HorizontalPodAutoscaler use) drives
// spec.replicas and reads the status.
func (e *env) testScale(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)
	e.waitGateway(t, key, settled)

	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 4}}
	if err := e.c.SubResource("scale").Update(e.ctx(t), gw, client.WithSubResourceBody(scale)); err != nil {
		t.Fatalf("scale: %v", err)
	}
	e.waitGateway(t, key, func(gw *v1alpha1.TCPGateway) error {
		if err := settled(gw); err != nil {
			return err
		}
		if gw.Status.ReadyText != "0/4" {
			return fmt.Errorf("readyText %q", gw.Status.ReadyText)
		}
		return nil
	})
	sts := &appsv1.StatefulSet{}
	e.getOwned(t, ns, "chat", sts)
	eq(t, "StatefulSet replicas", *sts.Spec.Replicas, int32(4))

	e.simulateReady(t, ns, "chat", 4, "203.0.113.30")
	e.waitGateway(t, key, hasCondition(v1alpha1.ConditionReady, "True", v1alpha1.ReasonReplicasReady))
	got := &autoscalingv1.Scale{}
	if err := e.c.SubResource("scale").Get(e.ctx(t), gw, got); err != nil {
		t.Fatal(err)
	}
	eq(t, "scale", []any{got.Spec.Replicas, got.Status.Replicas, got.Status.Selector},
		[]any{int32(4), int32(4), "app.kubernetes.io/instance=chat,app.kubernetes.io/name=tcpgateway"})
}

// Service changes go through the real API server's Service validation: annotations come and
// go, and a LoadBalancer can become a ClusterIP Service (node ports and the health check port
// must be dropped on the way).
func (e *env) testServiceChanges(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	gw.Spec.Service.Annotations = map[string]string{"lb.example.com/internal": "true", "lb.example.com/type": "nlb"}
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)
	e.waitGateway(t, key, settled)
	svc := &corev1.Service{}
	e.getOwned(t, ns, "chat", svc)
	if svc.Annotations["lb.example.com/internal"] != "true" || svc.Spec.Ports[0].NodePort == 0 || svc.Spec.HealthCheckNodePort == 0 {
		t.Fatalf("Service %+v", svc)
	}

	// Someone else's annotation (a cloud controller's) must survive our updates.
	svc.Annotations["cloud.example.com/status"] = "provisioned"
	if err := e.c.Update(e.ctx(t), svc); err != nil {
		t.Fatal(err)
	}
	e.update(t, key, func(gw *v1alpha1.TCPGateway) {
		gw.Spec.Service = v1alpha1.ServiceSpec{Type: "ClusterIP", Annotations: map[string]string{"lb.example.com/type": "nlb"}}
	})
	eventually(t, waitTimeout, func() error {
		e.getOwned(t, ns, "chat", svc)
		if svc.Spec.Type != corev1.ServiceTypeClusterIP {
			return fmt.Errorf("type %s", svc.Spec.Type)
		}
		return nil
	})
	eq(t, "annotations", []string{svc.Annotations["lb.example.com/internal"], svc.Annotations["lb.example.com/type"], svc.Annotations["cloud.example.com/status"]},
		[]string{"", "nlb", "provisioned"})
	eq(t, "nodePort", svc.Spec.Ports[0].NodePort, int32(0))
	eq(t, "externalTrafficPolicy", svc.Spec.ExternalTrafficPolicy, corev1.ServiceExternalTrafficPolicy(""))
	gw = e.waitGateway(t, key, settled)
	eq(t, "address (cluster IP)", gw.Status.Address, svc.Spec.ClusterIP)
	if c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionDegraded); c == nil || c.Status != "False" {
		t.Errorf("Degraded = %+v", c)
	}
}
