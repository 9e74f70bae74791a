package v1alpha1

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Schema defaults that are not also gateway configuration defaults. The ones that are (limits,
// auth, routes, drain, kafka.expiry, ports) equal the Default* constants of gateway/config; a
// test in controllers compares the generated CRD with them.
const (
	DefaultReplicas          = 2
	DefaultPartitions        = 12
	DefaultReplicationFactor = 3
	DefaultRetention         = "24h"
)

// TCPGateway runs a fleet of tcpgateway pods: a StatefulSet behind a LoadBalancer Service,
// its configuration, a PodDisruptionBudget and its Kafka topics.
//
// The name is limited to 52 characters because it names the StatefulSet, whose pods carry a
// controller-revision-hash label of name + 11 characters (labels hold at most 63), and it must
// be a DNS-1035 label because it also names Services.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=tcpgw,categories=all
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.readyText`,description="Ready pods / desired pods"
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.status.address`,description="Load balancer address clients connect to"
// +kubebuilder:printcolumn:name="Kafka",type=string,JSONPath=`.status.conditions[?(@.type=="KafkaReady")].status`,description="Kafka topics exist with enough partitions"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`,priority=1
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 52",message="metadata.name must be at most 52 characters: it names the StatefulSet, whose pods get a controller-revision-hash label of name + 11 characters"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must start with a letter and hold only lower-case letters, digits and '-': it also names Services, which must be DNS-1035 labels"
type TCPGateway struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec TCPGatewaySpec `json:"spec"`
	// +optional
	Status TCPGatewayStatus `json:"status,omitempty"`
}

// TCPGatewayList is a list of TCPGateway.
//
// +kubebuilder:object:root=true
type TCPGatewayList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TCPGateway `json:"items"`
}

// TCPGatewaySpec is the desired state of a gateway fleet.
//
// +kubebuilder:validation:XValidation:rule="self.port != self.adminPort",message="port and adminPort must differ"
// +kubebuilder:validation:XValidation:rule="!has(self.websocket) || !self.websocket.enabled || (self.websocket.port != self.port && self.websocket.port != self.adminPort)",message="websocket.port must differ from port and adminPort"
type TCPGatewaySpec struct {
	// Replicas is the number of gateway pods. Default 2. With spec.autoscaling, the
	// HorizontalPodAutoscaler the operator manages writes it through the scale subresource;
	// leave it out of applied manifests then, or each apply undoes the autoscaler's choice.
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Image of the gateway, e.g. ghcr.io/tcpgateway/tcpgateway:v0.1.0. The pod runs
	// /usr/local/bin/gateway from it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +required
	Image string `json:"image"`

	// Port clients connect to, on the pods and on the client Service. Default 7000.
	// +kubebuilder:default=7000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`

	// AdminPort serves /healthz, /readyz, /metrics and /status, read-only (GET and HEAD).
	// The drain starts through a pod-local socket, never through this port. Default 9090.
	// +kubebuilder:default=9090
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	AdminPort int32 `json:"adminPort,omitempty"`

	// Limits bound what each client can make a gateway pod spend.
	// +kubebuilder:default={}
	// +optional
	Limits Limits `json:"limits,omitempty"`

	// Auth selects how handshake tokens are verified: exactly one of jwt or webhook.
	// +required
	Auth Auth `json:"auth"`

	// Routes send client requests for a service to an HTTP backend. Service names are unique.
	// +listType=map
	// +listMapKey=service
	// +kubebuilder:validation:MaxItems=128
	// +optional
	Routes []Route `json:"routes,omitempty"`

	// Kafka is where downlink records and receipts flow. The operator creates the topics.
	// +required
	Kafka Kafka `json:"kafka"`

	// TLS makes the client port speak TLS only, with the certificate and key of a
	// kubernetes.io/tls Secret (mounted read-only at /etc/tcpgateway/tls/; the gateway reloads
	// a rotated certificate without dropping live connections). Unset: plaintext, e.g. with TLS
	// terminated at the load balancer (docs/security.md).
	// +optional
	TLS *ListenerTLS `json:"tls,omitempty"`

	// WebSocket, when enabled, serves the same protocol over WebSocket (RFC 6455) on a port of
	// its own, for browsers and other clients that cannot open raw TCP: one binary message per
	// frame (docs/protocol.md#websocket). With spec.tls it speaks wss:// with the same
	// certificate. Published on the client Service and the headless Service as port
	// "websocket". Off unless enabled.
	// +optional
	WebSocket *WebSocket `json:"websocket,omitempty"`

	// Drain paces a pod's graceful shutdown; it also sets the pods'
	// terminationGracePeriodSeconds (hardDeadline + 10s).
	// +kubebuilder:default={}
	// +optional
	Drain Drain `json:"drain,omitempty"`

	// Rebalance moves sessions from the fullest pods to the emptier ones when their counts
	// drift apart (after a scale-out). Off unless enabled.
	// +optional
	Rebalance *Rebalance `json:"rebalance,omitempty"`

	// Service is the client-facing Service.
	// +kubebuilder:default={}
	// +optional
	Service ServiceSpec `json:"service,omitempty"`

	// NetworkPolicy, when enabled, restricts who reaches the gateway pods: the client port
	// stays open to all, the admin port (probes, /metrics, /status; the operator's signed
	// POST /rebalance) only to pods of the selected namespaces and to the operator's own pods.
	// Off by default.
	// +optional
	NetworkPolicy *NetworkPolicySpec `json:"networkPolicy,omitempty"`

	// Resources of the gateway container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// NodeSelector of the gateway pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations of the gateway pods.
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// Affinity of the gateway pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// TopologySpreadConstraints of the gateway pods. When empty, the operator spreads the pods
	// across nodes (kubernetes.io/hostname, maxSkew 1, ScheduleAnyway).
	// +listType=atomic
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`

	// PodAnnotations are added to the gateway pods (tcpgateway.io/config-hash is the
	// operator's and wins).
	// +optional
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`

	// PodLabels are added to the gateway pods. The operator's labels (app.kubernetes.io/name,
	// instance, component and managed-by) are refused: the first two select the pods (and
	// cannot change on a StatefulSet), the last keeps them in the operator's cache.
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k in ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/component', 'app.kubernetes.io/managed-by']))",message="podLabels must not set app.kubernetes.io/name, instance, component or managed-by: the operator sets them and selects its pods by them"
	// +optional
	PodLabels map[string]string `json:"podLabels,omitempty"`

	// Pod customises the gateway pods: service account, image pull secrets, priority,
	// environment, extra volumes and containers, security contexts.
	// +optional
	Pod *PodTemplate `json:"pod,omitempty"`

	// PodDisruptionBudget sets the budget of the pods' PodDisruptionBudget. Unset:
	// maxUnavailable 1.
	// +optional
	PodDisruptionBudget *PodDisruptionBudgetSpec `json:"podDisruptionBudget,omitempty"`

	// Autoscaling, when set, makes the operator manage a HorizontalPodAutoscaler (autoscaling/v2,
	// named like the TCPGateway) that scales this TCPGateway through its scale subresource on
	// the client connections (established sessions) per pod. Removing it deletes the autoscaler and leaves
	// spec.replicas where the autoscaler last put it.
	// +optional
	Autoscaling *Autoscaling `json:"autoscaling,omitempty"`
}

// AutoscalingMetric is the per-pod metric the operator's HorizontalPodAutoscaler reads from the
// custom metrics API (custom.metrics.k8s.io, pods): the gateway's tcpgw_sessions gauge, its
// established (handshaken) client connections. The operator can serve it (docs/operator.md,
// Autoscaling); in production a prometheus-adapter exposing that gauge under the same name
// serves it equally.
const AutoscalingMetric = "tcpgw_sessions"

// Autoscaling bounds and drives the HorizontalPodAutoscaler.
//
// +kubebuilder:validation:XValidation:rule="self.minReplicas <= self.maxReplicas",message="minReplicas must be at most maxReplicas"
type Autoscaling struct {
	// MinReplicas is the fewest pods the autoscaler leaves. Default 2.
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinReplicas int32 `json:"minReplicas,omitempty"`

	// MaxReplicas is the most pods the autoscaler makes.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +required
	MaxReplicas int32 `json:"maxReplicas"`

	// TargetConnectionsPerPod is the average of client connections (established sessions,
	// tcpgw_sessions) per pod the autoscaler steers to (the Pods metric's averageValue).
	// +kubebuilder:validation:Minimum=1
	// +required
	TargetConnectionsPerPod int64 `json:"targetConnectionsPerPod"`

	// ScaleDownStabilizationSeconds: the autoscaler removes pods only down to the highest
	// recommendation of this many past seconds, so a dip in connections (clients reconnecting
	// after a drain) does not remove pods. Default 300 (the HPA's own default). Pods are
	// removed one per terminationGracePeriodSeconds of the pods, so at most one pod drains
	// because of the autoscaler at any moment; a window shorter than that grace period is
	// raised to it (within one period after a scale-out the HPA counts from the replicas
	// before it, and a shorter window would let it remove the pods it just added at once).
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	// +optional
	ScaleDownStabilizationSeconds *int32 `json:"scaleDownStabilizationSeconds,omitempty"`
}

// WebSocket is the gateway's WebSocket listener (gateway config listen.websocket).
type WebSocket struct {
	// Enabled serves WebSocket on Port. Default false.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// Port of the WebSocket listener, on the pods and on the client Service. Default 7080.
	// +kubebuilder:default=7080
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`

	// Path is the one HTTP path upgraded; any other gets 404. Default "/tcpgw".
	// +kubebuilder:default="/tcpgw"
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^/[^?#\s]*$`
	// +optional
	Path string `json:"path,omitempty"`

	// AllowedOrigins lists the origins (scheme://host[:port], e.g. "https://app.example.com",
	// compared without regard to case) whose pages may connect: an upgrade whose Origin header
	// is not listed gets 403. A request without Origin (not a browser) is accepted, and so is
	// every Origin when the list is empty. CSRF-style protection for browsers, not
	// authentication: the handshake's token authenticates (docs/security.md#websocket).
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:Pattern=`^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@\s]+$`
	// +optional
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
}

// TLSVersion is a minimum TLS protocol version.
//
// +kubebuilder:validation:Enum="1.2";"1.3"
type TLSVersion string

// ListenerTLS is the client port's TLS.
type ListenerTLS struct {
	// SecretName of a kubernetes.io/tls Secret (keys tls.crt, the PEM chain leaf first, and
	// tls.key) in the TCPGateway's namespace, e.g. one cert-manager keeps renewed.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	SecretName string `json:"secretName"`

	// MinVersion is the oldest TLS version accepted: "1.2" (default) or "1.3".
	// +kubebuilder:default="1.2"
	// +optional
	MinVersion TLSVersion `json:"minVersion,omitempty"`
}

// Duration is a Go duration string: decimal numbers, each with a unit, such as "500ms", "5s"
// or "1m30s". Units: ns, us, ms, s, m, h. Every duration of this API is positive (the gateway
// reads zero as "use the default", so zero is refused rather than silently replaced).
//
// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$`
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) > duration('0s') && duration(self) <= duration('87600h'))",message="must be a positive duration of at most 87600h, such as 500ms, 5s or 1m30s"
type Duration string

// Parse returns the duration. The schema only admits values that parse; the error is for
// objects built in Go.
func (d Duration) Parse() (time.Duration, error) {
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: %w", string(d), err)
	}
	return v, nil
}

// Limits bound every resource a client can make the gateway spend. Defaults equal the
// gateway's own (gateway/config).
//
// The cross-field rules here and on Drain start with has() guards only because the API server
// checks the schema default {} against them before the nested defaults exist; on a stored
// object every field is defaulted.
//
// +kubebuilder:validation:XValidation:rule="!has(self.idleTimeout) || !has(self.heartbeatInterval) || duration(self.idleTimeout) > duration(self.heartbeatInterval)",message="idleTimeout must be longer than heartbeatInterval, or healthy clients are closed between two heartbeats"
// +kubebuilder:validation:XValidation:rule="!has(self.outboundQueueBytes) || !has(self.maxFrameBytes) || self.outboundQueueBytes >= self.maxFrameBytes",message="outboundQueueBytes must be at least maxFrameBytes, or a single full-size frame closes the client as a slow consumer"
// +kubebuilder:validation:XValidation:rule="!has(self.maxHandshakeFrameBytes) || !has(self.maxFrameBytes) || self.maxHandshakeFrameBytes <= self.maxFrameBytes",message="maxHandshakeFrameBytes must be at most maxFrameBytes"
type Limits struct {
	// MaxConnections bounds the established sessions (handshake completed) of a pod; a
	// handshake beyond it is refused with ERROR SERVER_FULL. Connections awaiting their
	// handshake count against maxPendingHandshakes instead.
	// +kubebuilder:default=100000
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxConnections int32 `json:"maxConnections,omitempty"`

	// MaxPendingHandshakes bounds the connections of a pod accepted and still awaiting their
	// handshake; more are refused at once with ERROR SERVER_FULL.
	// +kubebuilder:default=10000
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxPendingHandshakes int32 `json:"maxPendingHandshakes,omitempty"`

	// MaxHandshakeFrameBytes is the largest frame body accepted before the handshake
	// completes (a handshake with its token), 64 to maxFrameBytes; a larger length prefix is
	// refused at once with ERROR FRAME_TOO_LARGE.
	// +kubebuilder:default=8192
	// +kubebuilder:validation:Minimum=64
	// +kubebuilder:validation:Maximum=16777216
	// +optional
	MaxHandshakeFrameBytes int32 `json:"maxHandshakeFrameBytes,omitempty"`

	// PerAddress bounds what one client address (an IPv4 address, or an IPv6 /64) can hold
	// and start on one pod. Refusals are ERROR ADDRESS_LIMIT. The source address is the
	// client's only with service.externalTrafficPolicy Local (the default).
	// +kubebuilder:default={}
	// +optional
	PerAddress AddressLimits `json:"perAddress,omitempty"`

	// MaxFrameBytes is the largest frame body accepted or sent, 64 to 16777216 (16 MiB).
	// +kubebuilder:default=65536
	// +kubebuilder:validation:Minimum=64
	// +kubebuilder:validation:Maximum=16777216
	// +optional
	MaxFrameBytes int32 `json:"maxFrameBytes,omitempty"`

	// HandshakeTimeout: a connection must complete its handshake within it.
	// +kubebuilder:default="5s"
	// +optional
	HandshakeTimeout Duration `json:"handshakeTimeout,omitempty"`

	// HeartbeatInterval advertised to clients in the handshake answer.
	// +kubebuilder:default="30s"
	// +optional
	HeartbeatInterval Duration `json:"heartbeatInterval,omitempty"`

	// IdleTimeout: a session silent this long is closed. Must exceed heartbeatInterval.
	// +kubebuilder:default="90s"
	// +optional
	IdleTimeout Duration `json:"idleTimeout,omitempty"`

	// RequestsPerSecond is each session's sustained uplink request rate (a token bucket),
	// as a quantity: "50", or "500m" for one request every two seconds.
	// +kubebuilder:default="50"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="must be a positive quantity such as 50 or 500m"
	// +optional
	RequestsPerSecond *resource.Quantity `json:"requestsPerSecond,omitempty"`

	// RequestBurst is the size of each session's token bucket.
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +optional
	RequestBurst int32 `json:"requestBurst,omitempty"`

	// OutboundQueueFrames bounds each session's queue of frames not yet written; a client
	// whose queue fills up is closed as a slow consumer.
	// +kubebuilder:default=1024
	// +kubebuilder:validation:Minimum=1
	// +optional
	OutboundQueueFrames int32 `json:"outboundQueueFrames,omitempty"`

	// OutboundQueueBytes bounds the same queue in bytes; at least maxFrameBytes.
	// +kubebuilder:default=1048576
	// +kubebuilder:validation:Minimum=1
	// +optional
	OutboundQueueBytes int32 `json:"outboundQueueBytes,omitempty"`

	// OutboundBudgetBytes bounds the outbound bytes of all sessions of a pod together (queued
	// or being written), as a quantity such as 256Mi; beyond it the slowest consumers (the
	// oldest stalled writes) are closed with ERROR SLOW_CONSUMER. At least
	// outboundQueueBytes. Default: 2 KiB per connection of maxConnections, at least 64Mi, at
	// most maxConnections × outboundQueueBytes.
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="must be a positive quantity such as 256Mi"
	// +optional
	OutboundBudgetBytes *resource.Quantity `json:"outboundBudgetBytes,omitempty"`

	// UplinkWorkers bounds the goroutines calling backends, shared by all sessions of a pod.
	// +kubebuilder:default=256
	// +kubebuilder:validation:Minimum=1
	// +optional
	UplinkWorkers int32 `json:"uplinkWorkers,omitempty"`

	// PendingAnswers bounds the pushes asking for an ack or reply that one session holds as
	// answerable; beyond it the oldest is forgotten (its answer is refused, its publisher
	// gets EXPIRED).
	// +kubebuilder:default=128
	// +kubebuilder:validation:Minimum=1
	// +optional
	PendingAnswers int32 `json:"pendingAnswers,omitempty"`

	// RefusedAnswers: a session whose answers were refused (ERROR UNKNOWN_PUSH) more than
	// this many times is closed.
	// +kubebuilder:default=16
	// +kubebuilder:validation:Minimum=1
	// +optional
	RefusedAnswers int32 `json:"refusedAnswers,omitempty"`
}

// AddressLimits bound one client address on one pod. The defaults leave room for
// carrier-grade NAT, where many subscribers share one public IPv4 address.
type AddressLimits struct {
	// MaxConnections from one address at once, awaiting their handshake or established.
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxConnections int32 `json:"maxConnections,omitempty"`

	// HandshakesPerSecond is the sustained rate of handshakes one address may start (a
	// token bucket), as a quantity: "50", or "500m" for one every two seconds.
	// +kubebuilder:default="50"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="must be a positive quantity such as 50 or 500m"
	// +optional
	HandshakesPerSecond *resource.Quantity `json:"handshakesPerSecond,omitempty"`

	// HandshakeBurst is the size of each address's handshake bucket.
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=1
	// +optional
	HandshakeBurst int32 `json:"handshakeBurst,omitempty"`
}

// Auth selects how handshake tokens are verified.
//
// +kubebuilder:validation:XValidation:rule="has(self.jwt) != has(self.webhook)",message="set exactly one of auth.jwt or auth.webhook"
type Auth struct {
	// JWT verifies tokens in the gateway with keys from a Secret.
	// +optional
	JWT *JWTAuth `json:"jwt,omitempty"`
	// Webhook asks an HTTP endpoint to verify each token.
	// +optional
	Webhook *WebhookAuth `json:"webhook,omitempty"`
	// RefreshLead: this long before a session's token expires the gateway asks the client
	// for a new one (REFRESH_REQUEST).
	// +kubebuilder:default="1m"
	// +optional
	RefreshLead Duration `json:"refreshLead,omitempty"`
	// RefreshGrace: a session whose token expired is closed with TOKEN_EXPIRED unless a new
	// token was accepted within this long after the expiry.
	// +kubebuilder:default="30s"
	// +optional
	RefreshGrace Duration `json:"refreshGrace,omitempty"`
}

// SecretKeyName is the name of a key in a Secret; it becomes a file name.
//
// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
// +kubebuilder:validation:MaxLength=253
type SecretKeyName string

// LocalSecretReference names a Secret in the TCPGateway's namespace.
type LocalSecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// SecretKeyReference names one key of a Secret in the TCPGateway's namespace.
type SecretKeyReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// Key in the Secret.
	// +required
	Key SecretKeyName `json:"key"`
}

// ConfigMapKeyReference names one key of a ConfigMap in the TCPGateway's namespace.
type ConfigMapKeyReference struct {
	// Name of the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// Key in the ConfigMap.
	// +required
	Key SecretKeyName `json:"key"`
}

// JWTAuth verifies HS256 and/or RS256 tokens. The referenced keys of the Secret are mounted
// at /etc/tcpgateway/keys/<key>; the gateway re-reads them when the Secret changes, so a key
// rotation needs no restart. A token with a "kid" header is checked against the keySet key
// with that kid only (an unknown kid is refused as unknown_key); a token without a kid is
// tried against every key of its alg.
//
// +kubebuilder:validation:XValidation:rule="has(self.hs256Key) || has(self.rs256PublicKey) || has(self.keySet)",message="set hs256Key, rs256PublicKey, keySet or several: the Secret keys holding the verification keys"
// +kubebuilder:validation:XValidation:rule="!has(self.hs256Key) || !has(self.rs256PublicKey) || self.hs256Key != self.rs256PublicKey",message="hs256Key and rs256PublicKey must name different Secret keys"
// +kubebuilder:validation:XValidation:rule="!has(self.keySet) || ((!has(self.hs256Key) || self.hs256Key != self.keySet) && (!has(self.rs256PublicKey) || self.rs256PublicKey != self.keySet))",message="keySet must name a Secret key of its own"
// +kubebuilder:validation:XValidation:rule="has(self.issuer) != (has(self.skipIssuerCheck) && self.skipIssuerCheck)",message="set issuer (the token's iss must equal it) or skipIssuerCheck: true, not both"
// +kubebuilder:validation:XValidation:rule="has(self.audience) != (has(self.skipAudienceCheck) && self.skipAudienceCheck)",message="set audience (the token's aud must contain it) or skipAudienceCheck: true, not both"
type JWTAuth struct {
	// SecretRef names the Secret holding the keys.
	// +required
	SecretRef LocalSecretReference `json:"secretRef"`

	// HS256Key is the Secret key holding one shared HMAC secret (raw bytes, at least 32),
	// used for tokens without a kid.
	// +optional
	HS256Key SecretKeyName `json:"hs256Key,omitempty"`

	// RS256PublicKey is the Secret key holding one PEM RSA public key (PKIX, PKCS#1 or a
	// certificate), used for tokens without a kid.
	// +optional
	RS256PublicKey SecretKeyName `json:"rs256PublicKey,omitempty"`

	// KeySet is the Secret key holding a JSON Web Key Set (RFC 7517): at most 16 keys, each
	// with a unique kid, HS256 ("kty":"oct") or RS256 ("kty":"RSA"). Rotate with overlap:
	// put the old and the new key in the Secret, move the issuer to the new key, remove the
	// old one once its last token has expired.
	// +optional
	KeySet SecretKeyName `json:"keySet,omitempty"`

	// Issuer must equal the token's "iss". Required unless skipIssuerCheck.
	// +kubebuilder:validation:MinLength=1
	// +optional
	Issuer string `json:"issuer,omitempty"`

	// SkipIssuerCheck accepts tokens whatever their "iss". Exclusive with issuer.
	// +optional
	SkipIssuerCheck bool `json:"skipIssuerCheck,omitempty"`

	// Audience must be in the token's "aud". Required unless skipAudienceCheck.
	// +kubebuilder:validation:MinLength=1
	// +optional
	Audience string `json:"audience,omitempty"`

	// SkipAudienceCheck accepts tokens whatever their "aud", so tokens the issuer minted for
	// other services too. Exclusive with audience.
	// +optional
	SkipAudienceCheck bool `json:"skipAudienceCheck,omitempty"`

	// UserClaim names the claim holding the user id.
	// +kubebuilder:default=sub
	// +kubebuilder:validation:MinLength=1
	// +optional
	UserClaim string `json:"userClaim,omitempty"`

	// GroupsClaim names the claim holding the group tags (an array of strings).
	// +kubebuilder:default=groups
	// +kubebuilder:validation:MinLength=1
	// +optional
	GroupsClaim string `json:"groupsClaim,omitempty"`

	// Leeway is the clock skew tolerated on exp, nbf and iat.
	// +kubebuilder:default="30s"
	// +optional
	Leeway Duration `json:"leeway,omitempty"`
}

// WebhookAuth delegates token verification to an HTTP endpoint.
//
// +kubebuilder:validation:XValidation:rule="!has(self.caBundle) || url(self.url).getScheme() == 'https'",message="caBundle only applies to an https:// url"
type WebhookAuth struct {
	// URL receives POST {"token","deviceID","clientAddress"} and answers
	// {"allowed":bool,"userID":string,"groups":[string],"reason":string,"expiresAt":int}
	// (expiresAt: Unix seconds, optional; without it sessions never refresh their token).
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",message="must be an absolute http:// or https:// URL"
	// +required
	URL string `json:"url"`

	// Timeout of one call.
	// +kubebuilder:default="2s"
	// +optional
	Timeout Duration `json:"timeout,omitempty"`

	// CABundle holds the PEM CAs trusted for an https url's certificate, from a ConfigMap or a
	// Secret (exactly one). It is mounted read-only at /etc/tcpgateway/webhook-ca/. Unset: the
	// system roots.
	// +optional
	CABundle *CABundle `json:"caBundle,omitempty"`
}

// CABundle is a PEM bundle of CA certificates in a ConfigMap key (CAs are public: a
// ConfigMap such as the trust-manager's or kube-root-ca.crt fits) or a Secret key.
//
// +kubebuilder:validation:XValidation:rule="has(self.configMapRef) != has(self.secretRef)",message="set exactly one of configMapRef or secretRef"
type CABundle struct {
	// ConfigMapRef names the ConfigMap key holding the bundle.
	// +optional
	ConfigMapRef *ConfigMapKeyReference `json:"configMapRef,omitempty"`
	// SecretRef names the Secret key holding the bundle.
	// +optional
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`
}

// Route sends the REQUESTs for one service to one HTTP backend, at url + "/" + method.
type Route struct {
	// Service is matched against the client request's service name.
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`
	// +kubebuilder:validation:MaxLength=63
	// +required
	Service string `json:"service"`

	// URL of the backend, without query or fragment.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",message="must be an absolute http:// or https:// URL"
	// +kubebuilder:validation:XValidation:rule="!self.contains('?') && !self.contains('#')",message="must not have a query or fragment: the method name is appended to the path"
	// +required
	URL string `json:"url"`

	// Timeout of one call, from dispatch to the backend's last byte.
	// +kubebuilder:default="5s"
	// +optional
	Timeout Duration `json:"timeout,omitempty"`

	// MaxInFlight bounds concurrent calls on this route per pod; more get TOO_MANY_IN_FLIGHT.
	// +kubebuilder:default=1024
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxInFlight int32 `json:"maxInFlight,omitempty"`

	// H2C speaks HTTP/2 over cleartext to the backend (one multiplexed connection).
	// +kubebuilder:default=false
	// +optional
	H2C bool `json:"h2c,omitempty"`
}

// HostPort is a host:port address; an IPv6 host is written in brackets.
//
// +kubebuilder:validation:Pattern=`^(\[[0-9a-fA-F:.]+\]|[^\s:\[\]/]+):[1-9][0-9]{0,4}$`
// +kubebuilder:validation:MaxLength=261
// +kubebuilder:validation:XValidation:rule="int(self.substring(self.lastIndexOf(':') + 1)) <= 65535",message="port must be at most 65535"
type HostPort string

// TopicDeletionPolicy says what happens to the Kafka topics when the TCPGateway is deleted.
//
// +kubebuilder:validation:Enum=Retain;Delete
type TopicDeletionPolicy string

const (
	// TopicDeletionRetain leaves the topics (and their records) in Kafka.
	TopicDeletionRetain TopicDeletionPolicy = "Retain"
	// TopicDeletionDelete deletes the topics before the TCPGateway goes away (a finalizer
	// holds the deletion until Kafka confirms).
	TopicDeletionDelete TopicDeletionPolicy = "Delete"
)

// Kafka configures downlink delivery, receipts and the topics the operator manages.
//
// +kubebuilder:validation:XValidation:rule="!has(self.sasl) || self.sasl.mechanism != 'PLAIN' || has(self.tls)",message="sasl.mechanism PLAIN sends the password as it is: set kafka.tls too, or use SCRAM-SHA-512 or SCRAM-SHA-256"
// +kubebuilder:validation:XValidation:rule="!has(self.downlinkTopic) || !has(self.receiptsTopic) || self.downlinkTopic != self.receiptsTopic",message="downlinkTopic and receiptsTopic must differ"
type Kafka struct {
	// BootstrapServers lists host:port addresses of Kafka brokers.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +required
	BootstrapServers []HostPort `json:"bootstrapServers"`

	// DownlinkTopic carries records for clients. Default "<namespace>.<name>.downlink".
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9._-]+$`
	// +kubebuilder:validation:MaxLength=249
	// +optional
	DownlinkTopic string `json:"downlinkTopic,omitempty"`

	// ReceiptsTopic carries acks, replies and expiries back to publishers.
	// Default "<namespace>.<name>.receipts".
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9._-]+$`
	// +kubebuilder:validation:MaxLength=249
	// +optional
	ReceiptsTopic string `json:"receiptsTopic,omitempty"`

	// EventsTopic receives the session events (connected, disconnected, replaced, resumed)
	// backends read for presence. Default "<namespace>.<name>.session-events".
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9._-]+$`
	// +kubebuilder:validation:MaxLength=249
	// +optional
	EventsTopic string `json:"eventsTopic,omitempty"`

	// EventsOmitRemoteAddress leaves the clients' addresses (personal data) out of the
	// session events.
	// +optional
	EventsOmitRemoteAddress bool `json:"eventsOmitRemoteAddress,omitempty"`

	// Partitions of each topic. Growing it adds partitions; shrinking it leaves the topics
	// as they are (Kafka cannot remove partitions).
	// +kubebuilder:default=12
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +optional
	Partitions int32 `json:"partitions,omitempty"`

	// ReplicationFactor of new topics, capped to the number of brokers the cluster reports.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=32767
	// +optional
	ReplicationFactor int32 `json:"replicationFactor,omitempty"`

	// Retention of records (the topics' retention.ms).
	// +kubebuilder:default="24h"
	// +optional
	Retention Duration `json:"retention,omitempty"`

	// TLS speaks TLS to the brokers (the gateway pods and the operator's topic management).
	// Unset: plaintext.
	// +optional
	TLS *KafkaTLS `json:"tls,omitempty"`

	// SASL authenticates to the brokers (the gateway pods and the operator's topic
	// management). Unset: no authentication.
	// +optional
	SASL *KafkaSASL `json:"sasl,omitempty"`

	// DeletionPolicy of the topics when the TCPGateway is deleted: Retain (default) or Delete.
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy TopicDeletionPolicy `json:"deletionPolicy,omitempty"`

	// Expiry tunes the expiry group: the consumer group over the receipts topic through which
	// the pods write EXPIRED receipts for unanswered pushes.
	// +kubebuilder:default={}
	// +optional
	Expiry KafkaExpiry `json:"expiry,omitempty"`
}

// KafkaTLS: TLS to the brokers, with the CAs to trust and, for mutual TLS, a client
// certificate. The referenced Secret keys are mounted read-only into the gateway pods under
// /etc/tcpgateway/kafka-tls/; the operator reads the same keys from the API for its topic
// management (see docs/security.md).
type KafkaTLS struct {
	// CA is a Secret key holding the PEM bundle of CAs trusted for the brokers' certificates,
	// e.g. Strimzi's <cluster>-cluster-ca-cert, key ca.crt. Unset: the system roots (managed
	// services with public certificates: MSK, Confluent Cloud).
	// +optional
	CA *SecretKeyReference `json:"ca,omitempty"`

	// ClientCertificate is presented to the brokers (mutual TLS), e.g. a Strimzi KafkaUser
	// with authentication type tls or a cert-manager Certificate.
	// +optional
	ClientCertificate *ClientCertificate `json:"clientCertificate,omitempty"`

	// ServerName is checked against the brokers' certificates instead of the host of each
	// broker address (for brokers reached through an address their certificate does not
	// name). Unset: each broker's host.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?$`
	// +optional
	ServerName string `json:"serverName,omitempty"`
}

// ClientCertificate is a PEM certificate chain and its private key in one Secret. The
// defaults fit a kubernetes.io/tls Secret; a Strimzi KafkaUser Secret uses user.crt and
// user.key.
type ClientCertificate struct {
	// SecretName of the Secret, in the TCPGateway's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	SecretName string `json:"secretName"`

	// CertificateKey holds the PEM certificate chain, leaf first.
	// +kubebuilder:default=tls.crt
	// +optional
	CertificateKey SecretKeyName `json:"certificateKey,omitempty"`

	// PrivateKeyKey holds the PEM private key (PKCS#1, PKCS#8 or EC).
	// +kubebuilder:default=tls.key
	// +optional
	PrivateKeyKey SecretKeyName `json:"privateKeyKey,omitempty"`
}

// SASLMechanism names a SASL mechanism the gateway speaks to Kafka.
//
// +kubebuilder:validation:Enum=PLAIN;SCRAM-SHA-256;SCRAM-SHA-512
type SASLMechanism string

const (
	// SASLPlain sends the user name and password as they are; it needs kafka.tls.
	SASLPlain SASLMechanism = "PLAIN"
	// SASLScramSHA256 is SCRAM (RFC 5802) with SHA-256: the password never crosses the wire.
	SASLScramSHA256 SASLMechanism = "SCRAM-SHA-256"
	// SASLScramSHA512 is SCRAM with SHA-512.
	SASLScramSHA512 SASLMechanism = "SCRAM-SHA-512"
)

// KafkaSASL authenticates to the brokers with a user name and password from a Secret. The
// two keys are mounted read-only into the gateway pods under /etc/tcpgateway/kafka-sasl/,
// where the gateway reads them again for each new broker connection, so a changed password
// applies without a restart once the kubelet has updated the files.
type KafkaSASL struct {
	// Mechanism: PLAIN (only with kafka.tls), SCRAM-SHA-256 or SCRAM-SHA-512 (default).
	// +kubebuilder:default=SCRAM-SHA-512
	// +optional
	Mechanism SASLMechanism `json:"mechanism,omitempty"`

	// SecretRef names the Secret holding the credentials.
	// +required
	SecretRef LocalSecretReference `json:"secretRef"`

	// UsernameKey is the Secret key holding the user name.
	// +kubebuilder:default=username
	// +optional
	UsernameKey SecretKeyName `json:"usernameKey,omitempty"`

	// PasswordKey is the Secret key holding the password (Strimzi's KafkaUser Secrets:
	// password).
	// +kubebuilder:default=password
	// +optional
	PasswordKey SecretKeyName `json:"passwordKey,omitempty"`
}

// KafkaExpiry tunes the expiry group "<receiptsTopic>.expiry". Defaults equal the gateway's
// own (gateway/config). The broker refuses a sessionTimeout outside its
// group.min.session.timeout.ms..group.max.session.timeout.ms (6s..30m by default): the group
// then never forms and no EXPIRED receipt is written.
//
// The rule starts with has() guards for the same reason as those on Limits.
//
// +kubebuilder:validation:XValidation:rule="!has(self.heartbeatInterval) || !has(self.sessionTimeout) || duration(self.heartbeatInterval) < duration(self.sessionTimeout)",message="heartbeatInterval must be shorter than sessionTimeout, or the coordinator declares live members dead between two heartbeats"
type KafkaExpiry struct {
	// SessionTimeout: the coordinator declares a silent member dead after this, and only then
	// moves a killed pod's receipts partitions. The smallest a broker accepts by default.
	// +kubebuilder:default="6s"
	// +optional
	SessionTimeout Duration `json:"sessionTimeout,omitempty"`

	// HeartbeatInterval: how often a member heartbeats, and so how soon it notices a
	// rebalance (a drained pod leaving). Shorter than sessionTimeout.
	// +kubebuilder:default="500ms"
	// +optional
	HeartbeatInterval Duration `json:"heartbeatInterval,omitempty"`

	// RebalanceTimeout: how long the coordinator waits for every member to rejoin during a
	// rebalance.
	// +kubebuilder:default="10s"
	// +optional
	RebalanceTimeout Duration `json:"rebalanceTimeout,omitempty"`

	// MaxEntries bounds the entries (open deliveries and tombstones) a pod holds over the
	// receipts partitions it owns; beyond it receipts are dropped and counted
	// (tcpgw_expiry_dropped_total). Default: the gateway's replay window size (100000).
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxEntries int32 `json:"maxEntries,omitempty"`
}

// Drain paces a graceful shutdown: readiness fails and the listener keeps accepting for
// deregistrationDelay, then GOAWAYs are spread over spreadWindow, then in-flight work gets
// flushTimeout, and hardDeadline (counted from the start) closes what remains.
//
// +kubebuilder:validation:XValidation:rule="!has(self.hardDeadline) || !has(self.deregistrationDelay) || !has(self.spreadWindow) || !has(self.flushTimeout) || duration(self.hardDeadline) > duration(self.deregistrationDelay) + duration(self.spreadWindow) + duration(self.flushTimeout)",message="hardDeadline must be longer than deregistrationDelay + spreadWindow + flushTimeout, or the deadline force-closes clients still due a paced GOAWAY (a reconnect storm)"
type Drain struct {
	// DeregistrationDelay: keep accepting while the load balancer notices readiness failed.
	// +kubebuilder:default="5s"
	// +optional
	DeregistrationDelay Duration `json:"deregistrationDelay,omitempty"`

	// SpreadWindow: GOAWAYs are spread over this window in paced batches.
	// +kubebuilder:default="20s"
	// +optional
	SpreadWindow Duration `json:"spreadWindow,omitempty"`

	// FlushTimeout: how long in-flight requests and outbound queues get to finish.
	// +kubebuilder:default="5s"
	// +optional
	FlushTimeout Duration `json:"flushTimeout,omitempty"`

	// HardDeadline, from the start of the drain, force-closes whatever remains.
	// +kubebuilder:default="45s"
	// +optional
	HardDeadline Duration `json:"hardDeadline,omitempty"`
}

// ServiceSpec shapes the client-facing Service.
//
// +kubebuilder:validation:XValidation:rule="self.type == 'LoadBalancer' || !has(self.loadBalancerSourceRanges) || size(self.loadBalancerSourceRanges) == 0",message="loadBalancerSourceRanges only applies to type LoadBalancer"
type ServiceSpec struct {
	// Type of the Service: LoadBalancer (default), NodePort or ClusterIP.
	// +kubebuilder:default=LoadBalancer
	// +kubebuilder:validation:Enum=LoadBalancer;NodePort;ClusterIP
	// +optional
	Type corev1.ServiceType `json:"type,omitempty"`

	// Annotations of the Service, e.g. for the cloud load balancer.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// ExternalTrafficPolicy: Local (default) keeps the client address and skips a second
	// hop; Cluster spreads evenly. Ignored for ClusterIP.
	// +kubebuilder:default=Local
	// +kubebuilder:validation:Enum=Local;Cluster
	// +optional
	ExternalTrafficPolicy corev1.ServiceExternalTrafficPolicy `json:"externalTrafficPolicy,omitempty"`

	// LoadBalancerSourceRanges restricts the client addresses (CIDRs) a LoadBalancer accepts.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.all(r, isCIDR(r))",message="must be CIDRs such as 203.0.113.0/24"
	// +listType=atomic
	// +optional
	LoadBalancerSourceRanges []string `json:"loadBalancerSourceRanges,omitempty"`
}

// NetworkPolicySpec shapes the NetworkPolicy the operator renders for the gateway pods. It
// restricts ingress only: the gateways call backends, auth webhooks and Kafka wherever they are.
type NetworkPolicySpec struct {
	// Enabled renders the NetworkPolicy (owned by the TCPGateway); false removes it.
	// +required
	Enabled bool `json:"enabled"`

	// MetricsNamespaceSelector selects the namespaces whose pods may reach the admin port
	// (Prometheus, for /metrics). Unset: only the TCPGateway's own namespace. An empty
	// selector ({}) selects every namespace. Kubelet probes come from the node, which
	// NetworkPolicies do not govern on common network plugins.
	// +optional
	MetricsNamespaceSelector *metav1.LabelSelector `json:"metricsNamespaceSelector,omitempty"`
}

// TCPGatewayStatus is the observed state of a gateway fleet.
type TCPGatewayStatus struct {
	// ObservedGeneration is the generation the operator last reconciled without error.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Replicas is the number of pods the StatefulSet runs (the scale subresource reads it).
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// ReadyReplicas is the number of ready pods.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// ReadyText is "readyReplicas/desired replicas", for the READY column.
	// +optional
	ReadyText string `json:"readyText,omitempty"`

	// Selector is the pods' label selector (the scale subresource reads it).
	// +optional
	Selector string `json:"selector,omitempty"`

	// Address clients connect to: the load balancer's IP or host name for type LoadBalancer,
	// otherwise the Service's cluster IP.
	// +optional
	Address string `json:"address,omitempty"`

	// Kafka reports the topics in use.
	// +optional
	Kafka *KafkaStatus `json:"kafka,omitempty"`

	// Rebalance reports the last rebalance, with spec.rebalance enabled.
	// +optional
	Rebalance *RebalanceStatus `json:"rebalance,omitempty"`

	// Conditions: Ready, Progressing, Degraded and KafkaReady.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// KafkaStatus reports the topics the gateway uses.
type KafkaStatus struct {
	// DownlinkTopic in use.
	DownlinkTopic string `json:"downlinkTopic,omitempty"`
	// ReceiptsTopic in use.
	ReceiptsTopic string `json:"receiptsTopic,omitempty"`
	// EventsTopic in use: where the pods publish session events.
	EventsTopic string `json:"eventsTopic,omitempty"`
	// Partitions of the topics (the smallest count if they differ); it can exceed
	// spec.kafka.partitions, since partitions are never removed.
	Partitions int32 `json:"partitions,omitempty"`
}
