package controllers

import (
	"os"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

// TestMain stops the Kafka broker this test binary started, if it started one.
func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

// newGateway is a TCPGateway as the API server stores it: every schema default filled in.
// Tests change what they are about with mutate.
func newGateway(mutate ...func(*v1alpha1.TCPGateway)) *v1alpha1.TCPGateway {
	gw := &v1alpha1.TCPGateway{
		ObjectMeta: metav1.ObjectMeta{Name: "chat", Namespace: "prod", UID: "uid-1", Generation: 3},
		Spec: v1alpha1.TCPGatewaySpec{
			Replicas:  ptr.To[int32](2),
			Image:     "ghcr.io/tcpgateway/tcpgateway:v0.1.0",
			Port:      7000,
			AdminPort: 9090,
			Limits: v1alpha1.Limits{
				MaxConnections:         100000,
				MaxPendingHandshakes:   10000,
				MaxFrameBytes:          65536,
				MaxHandshakeFrameBytes: 8192,
				PerAddress: v1alpha1.AddressLimits{
					MaxConnections:      1000,
					HandshakesPerSecond: ptr.To(resource.MustParse("50")),
					HandshakeBurst:      1000,
				},
				HandshakeTimeout:    "5s",
				HeartbeatInterval:   "30s",
				IdleTimeout:         "90s",
				RequestsPerSecond:   ptr.To(resource.MustParse("50")),
				RequestBurst:        100,
				OutboundQueueFrames: 1024,
				OutboundQueueBytes:  1048576,
				UplinkWorkers:       256,
			},
			Auth: v1alpha1.Auth{JWT: &v1alpha1.JWTAuth{
				SecretRef:   v1alpha1.LocalSecretReference{Name: "chat-jwt"},
				HS256Key:    "hs256.secret",
				Issuer:      "https://auth.example.com",
				Audience:    "chat",
				UserClaim:   "sub",
				GroupsClaim: "groups",
				Leeway:      "30s",
			}},
			Routes: []v1alpha1.Route{{Service: "echo", URL: "http://echo.prod.svc:8080/rpc", Timeout: "5s", MaxInFlight: 1024}},
			Kafka: v1alpha1.Kafka{
				BootstrapServers:  []v1alpha1.HostPort{"kafka.kafka.svc:9092"},
				Partitions:        12,
				ReplicationFactor: 3,
				Retention:         "24h",
				DeletionPolicy:    v1alpha1.TopicDeletionRetain,
				Expiry:            v1alpha1.KafkaExpiry{SessionTimeout: "6s", HeartbeatInterval: "500ms", RebalanceTimeout: "10s"},
			},
			Drain: v1alpha1.Drain{DeregistrationDelay: "5s", SpreadWindow: "20s", FlushTimeout: "5s", HardDeadline: "45s"},
			Service: v1alpha1.ServiceSpec{
				Type:                  "LoadBalancer",
				ExternalTrafficPolicy: "Local",
			},
		},
	}
	for _, m := range mutate {
		m(gw)
	}
	return gw
}

// mustRender renders gw's configuration or fails the test.
func mustRender(t *testing.T, gw *v1alpha1.TCPGateway) *RenderedConfig {
	t.Helper()
	rc, err := RenderConfig(gw)
	if err != nil {
		t.Fatalf("RenderConfig: %v", err)
	}
	return rc
}

func resourceQuantity(s string) resource.Quantity { return resource.MustParse(s) }
