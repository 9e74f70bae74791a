package controllers

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
)

// sts is a StatefulSet with replicas desired and the given status, fully rolled out unless
// the status says otherwise.
func sts(replicas int32, status appsv1.StatefulSetStatus) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Generation: 4},
		Spec:       appsv1.StatefulSetSpec{Replicas: ptr.To(replicas)},
		Status:     status,
	}
}

func rolledOut(replicas, ready int32) appsv1.StatefulSetStatus {
	return appsv1.StatefulSetStatus{
		ObservedGeneration: 4, Replicas: replicas, ReadyReplicas: ready, UpdatedReplicas: replicas,
		CurrentRevision: "chat-abc", UpdateRevision: "chat-abc",
	}
}

func lb(ingress ...corev1.LoadBalancerIngress) *corev1.Service {
	return &corev1.Service{
		Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.10"},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: ingress}},
	}
}

type wantCondition struct {
	status  metav1.ConditionStatus
	reason  string
	message string // substring
}

func checkCondition(t *testing.T, gw *v1alpha1.TCPGateway, typ string, want wantCondition) {
	t.Helper()
	c := meta.FindStatusCondition(gw.Status.Conditions, typ)
	if c == nil {
		t.Fatalf("no %s condition", typ)
	}
	if c.Status != want.status || c.Reason != want.reason || !strings.Contains(c.Message, want.message) {
		t.Errorf("%s = %s/%s %q, want %s/%s containing %q", typ, c.Status, c.Reason, c.Message, want.status, want.reason, want.message)
	}
	if c.ObservedGeneration != gw.Generation {
		t.Errorf("%s observedGeneration = %d, want %d", typ, c.ObservedGeneration, gw.Generation)
	}
}

func TestSetReadyCondition(t *testing.T) {
	tests := []struct {
		name     string
		replicas int32
		o        observed
		want     wantCondition
	}{
		{"all ready with an LB IP", 2, observed{statefulSet: sts(2, rolledOut(2, 2)), clientService: lb(corev1.LoadBalancerIngress{IP: "203.0.113.7"})},
			wantCondition{"True", "ReplicasReady", "2 of 2 pods ready at 203.0.113.7"}},
		{"all ready with an LB host name", 2, observed{statefulSet: sts(2, rolledOut(2, 2)), clientService: lb(corev1.LoadBalancerIngress{Hostname: "gw.elb.example.com"})},
			wantCondition{"True", "ReplicasReady", "at gw.elb.example.com"}},
		{"cluster IP service needs no LB", 1, observed{statefulSet: sts(1, rolledOut(1, 1)),
			clientService: &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.9"}}},
			wantCondition{"True", "ReplicasReady", "at 10.96.0.9"}},
		{"pods not ready", 3, observed{statefulSet: sts(3, rolledOut(3, 1)), clientService: lb(corev1.LoadBalancerIngress{IP: "203.0.113.7"})},
			wantCondition{"False", "ReplicasNotReady", "1 of 3 pods ready"}},
		{"ready but LB pending", 2, observed{statefulSet: sts(2, rolledOut(2, 2)), clientService: lb()},
			wantCondition{"False", "AddressPending", "LoadBalancer Service has no address yet"}},
		{"scaled to zero", 0, observed{statefulSet: sts(0, rolledOut(0, 0)), clientService: lb(corev1.LoadBalancerIngress{IP: "203.0.113.7"})},
			wantCondition{"False", "ScaledToZero", "spec.replicas is 0"}},
		{"no StatefulSet", 2, observed{},
			wantCondition{"False", "StatefulSetMissing", "does not exist yet"}},
		{"no StatefulSet because the config is invalid", 2, observed{configErr: &InvalidConfigError{Err: errors.New("bad")}},
			wantCondition{"False", "InvalidConfig", "configuration is invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway(func(gw *v1alpha1.TCPGateway) { gw.Spec.Replicas = ptr.To(tt.replicas) })
			setReadyCondition(gw, &tt.o)
			checkCondition(t, gw, v1alpha1.ConditionReady, tt.want)
		})
	}
}

func TestSetProgressingCondition(t *testing.T) {
	tests := []struct {
		name string
		sts  *appsv1.StatefulSet
		want wantCondition
	}{
		{"rolled out", sts(2, rolledOut(2, 2)), wantCondition{"False", "RolloutComplete", "2 pods at revision chat-abc"}},
		{"controller behind", sts(2, func() appsv1.StatefulSetStatus { s := rolledOut(2, 2); s.ObservedGeneration = 3; return s }()),
			wantCondition{"True", "RollingOut", "has not seen the latest spec"}},
		{"rolling update", sts(3, appsv1.StatefulSetStatus{ObservedGeneration: 4, Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 1, CurrentRevision: "a", UpdateRevision: "b"}),
			wantCondition{"True", "RollingOut", "1 of 3 pods updated; revision b replacing a"}},
		{"scaling up", sts(4, func() appsv1.StatefulSetStatus { s := rolledOut(2, 2); return s }()),
			wantCondition{"True", "RollingOut", "2 pods, want 4"}},
		{"fresh StatefulSet without status", sts(2, appsv1.StatefulSetStatus{}),
			wantCondition{"True", "RollingOut", "0 pods, want 2"}},
		{"no StatefulSet", nil, wantCondition{"False", "StatefulSetMissing", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway()
			setProgressingCondition(gw, &observed{statefulSet: tt.sts})
			checkCondition(t, gw, v1alpha1.ConditionProgressing, tt.want)
		})
	}
}

func TestSetDegradedCondition(t *testing.T) {
	crashLooping := []corev1.Pod{
		gatewayPod("chat-0", running(true, 0, nil)),
		gatewayPod("chat-1", waiting("CrashLoopBackOff", "back-off 40s", 4, exited(1, "Error", shortKeyError))),
	}
	tests := []struct {
		name string
		o    observed
		want wantCondition
	}{
		{"healthy", observed{}, wantCondition{"False", "AsExpected", "applied"}},
		{"invalid config", observed{configErr: &InvalidConfigError{Err: errors.New("drain.hardDeadline: too short")}},
			wantCondition{"True", "InvalidConfig", "drain.hardDeadline: too short; the pods keep their previous configuration"}},
		{"API error", observed{reconcileErr: errors.New("while creating Service chat: forbidden")},
			wantCondition{"True", "ReconcileError", "forbidden"}},
		{"invalid config wins over an API error", observed{configErr: &InvalidConfigError{Err: errors.New("x")}, reconcileErr: errors.New("y")},
			wantCondition{"True", "InvalidConfig", "x"}},
		{"long messages are cut", observed{reconcileErr: errors.New(strings.Repeat("e", 5000))},
			wantCondition{"True", "ReconcileError", "eee..."}},
		{"healthy pods", observed{pods: []corev1.Pod{gatewayPod("chat-0", running(true, 0, nil)), gatewayPod("chat-1", running(false, 0, nil))}},
			wantCondition{"False", "AsExpected", "applied"}},
		{"crash-looping pods", observed{pods: crashLooping},
			wantCondition{"True", "PodsFailing", "1 of 2 pods failing: chat-1 CrashLoopBackOff (exit 1, 4 restarts): gateway: while setting up auth: " +
				"auth: hs256SecretFile: while parsing key file /etc/tcpgateway/keys/hs256.secret: HS256 secret is 5 bytes, need at least 32 (RFC 7518 §3.2)"}},
		{"invalid config wins over failing pods", observed{configErr: &InvalidConfigError{Err: errors.New("x")}, pods: crashLooping},
			wantCondition{"True", "InvalidConfig", "x"}},
		{"an API error wins over failing pods", observed{reconcileErr: errors.New("y"), pods: crashLooping},
			wantCondition{"True", "ReconcileError", "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway()
			setDegradedCondition(gw, &tt.o)
			checkCondition(t, gw, v1alpha1.ConditionDegraded, tt.want)
			if c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionDegraded); len(c.Message) > maxConditionMessage {
				t.Errorf("message of %d bytes", len(c.Message))
			}
		})
	}
}

func TestSetKafkaCondition(t *testing.T) {
	ok := TopicResult{Brokers: 3, Topics: []TopicState{{Name: "d", Partitions: 12}, {Name: "r", Partitions: 16}}}
	tests := []struct {
		name string
		k    kafkaOutcome
		want wantCondition
	}{
		{"ready", kafkaOutcome{downlink: "d", receipts: "r", result: ok},
			wantCondition{"True", "TopicsReady", "topics d and r have 12 partitions"}},
		{"replication capped", kafkaOutcome{downlink: "d", receipts: "r", result: TopicResult{Brokers: 1, ReplicationCapped: true, Topics: ok.Topics}},
			wantCondition{"True", "TopicsReady", "replication factor capped to 1: the cluster reports 1 broker(s)"}},
		{"unreachable", kafkaOutcome{err: fmt.Errorf("%w: dial tcp 127.0.0.1:1: connection refused", ErrKafkaUnreachable)},
			wantCondition{"False", "KafkaUnreachable", "connection refused"}},
		{"topic error", kafkaOutcome{err: &TopicError{Topic: "d", Op: "create", Err: errors.New("policy violation")}},
			wantCondition{"False", "TopicError", `while trying to create topic "d": policy violation`}},
		{"wrong password", kafkaOutcome{err: unreachable(fmt.Errorf("SASL handshake: %w", kafka.SASLAuthenticationFailed))},
			wantCondition{"False", "KafkaAuthFailed", "SASL Authentication failed"}},
		{"ACL refuses a topic operation", kafkaOutcome{err: &TopicError{Topic: "d", Op: "create", Err: kafka.TopicAuthorizationFailed}},
			wantCondition{"False", "KafkaAuthFailed", `while trying to create topic "d": [29] Topic Authorization Failed`}},
		{"unknown CA", kafkaOutcome{err: unreachable(&kafkasec.TLSError{Addr: "kafka:9093", Err: x509.UnknownAuthorityError{}})},
			wantCondition{"False", "KafkaTLSFailed", "TLS handshake with Kafka broker kafka:9093 failed"}},
		{"missing Secret key", kafkaOutcome{err: &SecretError{Field: "spec.kafka.sasl.secretRef", Secret: "kafka-user", Key: "password", Err: errors.New("no such key")}},
			wantCondition{"False", "KafkaSecretInvalid", `Secret "kafka-user" key "password" (spec.kafka.sasl.secretRef): no such key`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway()
			setKafkaCondition(gw, &observed{kafka: tt.k})
			checkCondition(t, gw, v1alpha1.ConditionKafkaReady, tt.want)
		})
	}
}

// A condition keeps its lastTransitionTime while its status stays, whatever else changes.
func TestConditionTransitionTime(t *testing.T) {
	gw := newGateway()
	setKafkaCondition(gw, &observed{kafka: kafkaOutcome{err: fmt.Errorf("%w: a", ErrKafkaUnreachable)}})
	c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionKafkaReady)
	c.LastTransitionTime = metav1.NewTime(time.Unix(1000, 0))
	setKafkaCondition(gw, &observed{kafka: kafkaOutcome{err: &TopicError{Topic: "t", Op: "create", Err: errors.New("b")}}})
	c = meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionKafkaReady)
	if c.Reason != "TopicError" || !c.LastTransitionTime.Equal(ptr.To(metav1.NewTime(time.Unix(1000, 0)))) {
		t.Errorf("condition = %+v, want reason TopicError and the old transition time", c)
	}
}

func TestKafkaRetryAfter(t *testing.T) {
	t0 := time.Unix(10000, 0)
	tests := []struct {
		failingFor time.Duration
		want       time.Duration
	}{
		{0, 5 * time.Second},
		{time.Second, 5 * time.Second},
		{5 * time.Second, 5 * time.Second},
		{12 * time.Second, 12 * time.Second},
		{2 * time.Minute, 2 * time.Minute},
		{5 * time.Minute, 5 * time.Minute},
		{3 * time.Hour, 5 * time.Minute},
		{-time.Minute, 5 * time.Second}, // clock skew
	}
	for _, tt := range tests {
		if got := kafkaRetryAfter(t0.Add(-tt.failingFor), t0); got != tt.want {
			t.Errorf("failing for %s: retry after %s, want %s", tt.failingFor, got, tt.want)
		}
	}
}

func TestServiceAddress(t *testing.T) {
	tests := []struct {
		name string
		svc  *corev1.Service
		want string
	}{
		{"none", nil, ""},
		{"LB pending", lb(), ""},
		{"LB IP first", lb(corev1.LoadBalancerIngress{IP: "1.2.3.4", Hostname: "h"}), "1.2.3.4"},
		{"LB host name", lb(corev1.LoadBalancerIngress{Hostname: "h.example.com"}), "h.example.com"},
		{"LB skips empty ingress", lb(corev1.LoadBalancerIngress{}, corev1.LoadBalancerIngress{IP: "5.6.7.8"}), "5.6.7.8"},
		{"node port: cluster IP", &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.0.0.1"}}, "10.0.0.1"},
		{"headless: none", &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "None"}}, ""},
	}
	for _, tt := range tests {
		if got := serviceAddress(tt.svc); got != tt.want {
			t.Errorf("%s: address %q, want %q", tt.name, got, tt.want)
		}
	}
}
