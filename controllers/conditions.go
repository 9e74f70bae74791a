package controllers

import (
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
)

// observed is what one reconcile saw and did; the status is computed from it alone.
type observed struct {
	// statefulSet and clientService as they are in the cluster; nil when absent.
	statefulSet   *appsv1.StatefulSet
	clientService *corev1.Service
	// pods are the StatefulSet's gateway pods, from the cache (tcpgateway_pods.go).
	pods []corev1.Pod
	// configErr is an *InvalidConfigError: the spec renders a configuration the gateway
	// refuses.
	configErr error
	// reconcileErr is the API error that stopped the object phases.
	reconcileErr error
	// kafka is the outcome of the topic phase.
	kafka kafkaOutcome
	// rebalanceKey signs the requests to the pods (rebalance_secret.go); nil when
	// spec.rebalance is off. Kept for this reconcile only.
	rebalanceKey []byte
}

type kafkaOutcome struct {
	downlink, receipts, events string
	result                     TopicResult
	err                        error
}

// maxConditionMessage keeps condition messages readable and well under the API limit
// (32768 bytes).
const maxConditionMessage = 1024

func setCondition(gw *v1alpha1.TCPGateway, typ string, status metav1.ConditionStatus, reason, message string) {
	if len(message) > maxConditionMessage {
		message = strings.ToValidUTF8(message[:maxConditionMessage-3], "") + "..."
	}
	meta.SetStatusCondition(&gw.Status.Conditions, metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: gw.Generation,
	})
}

// setReadyCondition: every desired pod is ready and clients have an address. It does not
// include Kafka (see KafkaReady): the pods' own readiness already does.
func setReadyCondition(gw *v1alpha1.TCPGateway, o *observed) {
	want := replicas(gw)
	switch {
	case o.statefulSet == nil && o.configErr != nil:
		setCondition(gw, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidConfig,
			"no StatefulSet: the configuration is invalid (see the Degraded condition)")
	case o.statefulSet == nil:
		setCondition(gw, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonStatefulSetMissing,
			"the StatefulSet does not exist yet")
	case want == 0:
		setCondition(gw, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonScaledToZero,
			"spec.replicas is 0")
	case o.statefulSet.Status.ReadyReplicas < want:
		setCondition(gw, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonReplicasNotReady,
			fmt.Sprintf("%d of %d pods ready", o.statefulSet.Status.ReadyReplicas, want))
	case serviceAddress(o.clientService) == "":
		setCondition(gw, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAddressPending,
			fmt.Sprintf("%d of %d pods ready; the %s Service has no address yet", want, want, serviceType(o.clientService)))
	default:
		setCondition(gw, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReplicasReady,
			fmt.Sprintf("%d of %d pods ready at %s", want, want, serviceAddress(o.clientService)))
	}
}

// setProgressingCondition: the StatefulSet has not finished rolling out its current spec.
func setProgressingCondition(gw *v1alpha1.TCPGateway, o *observed) {
	sts := o.statefulSet
	if sts == nil {
		setCondition(gw, v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonStatefulSetMissing,
			"the StatefulSet does not exist yet")
		return
	}
	want := int32(1)
	if sts.Spec.Replicas != nil {
		want = *sts.Spec.Replicas
	}
	st := sts.Status
	var pending []string
	if st.ObservedGeneration < sts.Generation {
		pending = append(pending, "the StatefulSet controller has not seen the latest spec")
	}
	if st.Replicas != want {
		pending = append(pending, fmt.Sprintf("%d pods, want %d", st.Replicas, want))
	}
	if st.UpdatedReplicas < want {
		pending = append(pending, fmt.Sprintf("%d of %d pods updated", st.UpdatedReplicas, want))
	}
	if st.UpdateRevision != "" && st.CurrentRevision != st.UpdateRevision {
		pending = append(pending, fmt.Sprintf("revision %s replacing %s", st.UpdateRevision, st.CurrentRevision))
	}
	if len(pending) > 0 {
		setCondition(gw, v1alpha1.ConditionProgressing, metav1.ConditionTrue, v1alpha1.ReasonRollingOut,
			strings.Join(pending, "; "))
		return
	}
	setCondition(gw, v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonRolloutComplete,
		fmt.Sprintf("%d pods at revision %s", want, st.UpdateRevision))
}

// setDegradedCondition: the operator cannot apply the spec, or the pods it runs fail to
// start. The operator's own failures come first: with an invalid configuration or an API
// error, what the pods do is not the current spec's doing.
func setDegradedCondition(gw *v1alpha1.TCPGateway, o *observed) {
	failures, total := failingPods(o.pods)
	switch {
	case o.configErr != nil:
		setCondition(gw, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonInvalidConfig,
			o.configErr.Error()+"; the pods keep their previous configuration")
	case o.reconcileErr != nil:
		setCondition(gw, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonReconcileError,
			o.reconcileErr.Error())
	case len(failures) > 0:
		setCondition(gw, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonPodsFailing,
			podsFailingMessage(failures, total))
	default:
		setCondition(gw, v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected,
			"the spec is applied")
	}
}

// setKafkaCondition: the three topics exist with enough partitions.
func setKafkaCondition(gw *v1alpha1.TCPGateway, o *observed) {
	k := o.kafka
	if k.err != nil {
		setCondition(gw, v1alpha1.ConditionKafkaReady, metav1.ConditionFalse, kafkaReason(k.err), k.err.Error())
		return
	}
	msg := fmt.Sprintf("topics %s and %s have %d partitions", k.downlink, k.receipts, minPartitions(k.result))
	if k.result.ReplicationCapped {
		msg += fmt.Sprintf("; replication factor capped to %d: the cluster reports %d broker(s)",
			k.result.Brokers, k.result.Brokers)
	}
	setCondition(gw, v1alpha1.ConditionKafkaReady, metav1.ConditionTrue, v1alpha1.ReasonTopicsReady, msg)
}

// kafkaReason is the KafkaReady (and Event) reason for an error of the Kafka phase: the
// CamelCase of the gateway's own reason (kafkasec.Reason) when a request did not complete or
// Kafka refused who the operator is (an ACL refusal of a topic operation included: the
// gateway names it kafka_auth_failed too).
func kafkaReason(err error) string {
	var secretErr *SecretError
	switch {
	case errors.As(err, &secretErr):
		return v1alpha1.ReasonKafkaSecretInvalid
	case kafkasec.Reason(err) == kafkasec.ReasonAuthFailed:
		return v1alpha1.ReasonKafkaAuthFailed
	case !errors.Is(err, ErrKafkaUnreachable):
		return v1alpha1.ReasonTopicError
	case kafkasec.Reason(err) == kafkasec.ReasonTLSFailed:
		return v1alpha1.ReasonKafkaTLSFailed
	default:
		return v1alpha1.ReasonKafkaUnreachable
	}
}

// minPartitions is the smallest partition count of the topics (0 when there are none).
func minPartitions(r TopicResult) int {
	n := 0
	for i, t := range r.Topics {
		if i == 0 || t.Partitions < n {
			n = t.Partitions
		}
	}
	return n
}

// serviceAddress is where clients connect: the load balancer's first IP or host name, or for
// the other Service types the cluster IP.
func serviceAddress(svc *corev1.Service) string {
	if svc == nil {
		return ""
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				return in.IP
			}
			if in.Hostname != "" {
				return in.Hostname
			}
		}
		return ""
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return ""
	}
	return svc.Spec.ClusterIP
}

func serviceType(svc *corev1.Service) corev1.ServiceType {
	if svc == nil {
		return ""
	}
	return svc.Spec.Type
}

// Bounds of the Kafka retry delay.
const (
	kafkaRetryMin = 5 * time.Second
	kafkaRetryMax = 5 * time.Minute
)

// kafkaRetryAfter is how long to wait before trying Kafka again, given since when it has been
// failing: as long as it has been failing so far, within [kafkaRetryMin, kafkaRetryMax]. Each
// retry thus roughly doubles the delay, with no per-object counter to keep: the KafkaReady
// condition's lastTransitionTime is the memory.
func kafkaRetryAfter(failingSince, now time.Time) time.Duration {
	d := now.Sub(failingSince)
	return min(max(d, kafkaRetryMin), kafkaRetryMax)
}
