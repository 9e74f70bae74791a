package v1alpha1

// Condition types of TCPGateway.status.conditions.
const (
	// ConditionReady is True when every desired pod is ready and clients have an address to
	// connect to.
	ConditionReady = "Ready"
	// ConditionProgressing is True while the StatefulSet rolls out a change or scales.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when the spec cannot be applied or does not run: an invalid
	// gateway configuration, a failing API call, or gateway pods that fail to start.
	ConditionDegraded = "Degraded"
	// ConditionKafkaReady is True when the three topics exist with at least the requested
	// partitions.
	ConditionKafkaReady = "KafkaReady"
)

// Condition reasons. Each is CamelCase as metav1.Condition requires, and the same string is
// used for the Event reason when there is an Event.
const (
	// ReasonReplicasReady (Ready=True): every desired pod is ready and the address is known.
	ReasonReplicasReady = "ReplicasReady"
	// ReasonReplicasNotReady (Ready=False): fewer ready pods than desired.
	ReasonReplicasNotReady = "ReplicasNotReady"
	// ReasonAddressPending (Ready=False): the pods are ready but the load balancer has no
	// address yet.
	ReasonAddressPending = "AddressPending"
	// ReasonScaledToZero (Ready=False): spec.replicas is 0.
	ReasonScaledToZero = "ScaledToZero"
	// ReasonStatefulSetMissing (Ready=False, Progressing=False): no StatefulSet exists yet,
	// typically because the first configuration was invalid.
	ReasonStatefulSetMissing = "StatefulSetMissing"

	// ReasonRollingOut (Progressing=True): pods are being updated, created or removed.
	ReasonRollingOut = "RollingOut"
	// ReasonRolloutComplete (Progressing=False): every pod runs the current revision.
	ReasonRolloutComplete = "RolloutComplete"

	// ReasonInvalidConfig (Degraded=True): the spec passed admission but the gateway would
	// reject the rendered configuration. The previous configuration stays in place.
	ReasonInvalidConfig = "InvalidConfig"
	// ReasonReconcileError (Degraded=True): an API call failed; the message says which.
	ReasonReconcileError = "ReconcileError"
	// ReasonPodsFailing (Degraded=True): gateway pods crash-loop or cannot start their
	// container (CrashLoopBackOff, CreateContainerConfigError, ImagePullBackOff, ...); the
	// message names the pods with the kubelet's reason, the last exit code, the restart count
	// and the end of the last termination message (the gateway's own error). It comes after
	// ReasonInvalidConfig and ReasonReconcileError: those are the operator's own failures.
	ReasonPodsFailing = "PodsFailing"
	// ReasonAsExpected (Degraded=False).
	ReasonAsExpected = "AsExpected"

	// ReasonTopicsReady (KafkaReady=True): the three topics exist with enough partitions.
	ReasonTopicsReady = "TopicsReady"
	// ReasonKafkaUnreachable (KafkaReady=False): no bootstrap broker answered (refused, timed
	// out, or the address does not resolve).
	ReasonKafkaUnreachable = "KafkaUnreachable"
	// ReasonKafkaAuthFailed (KafkaReady=False): a broker refused the SASL credentials of
	// spec.kafka.sasl (wrong user name or password, a mechanism the broker does not enable),
	// or an ACL refused a topic operation to that user.
	ReasonKafkaAuthFailed = "KafkaAuthFailed"
	// ReasonKafkaTLSFailed (KafkaReady=False): the TLS handshake with a broker failed: a
	// certificate signed by a CA not in spec.kafka.tls.ca, an expired certificate, a name
	// mismatch, or a client certificate the broker refused.
	ReasonKafkaTLSFailed = "KafkaTLSFailed"
	// ReasonKafkaSecretInvalid (KafkaReady=False): a Secret that spec.kafka.tls or
	// spec.kafka.sasl references is missing, lacks the named key, or holds unusable material
	// (PEM that does not parse, a key that does not match its certificate). A Warning Event
	// names the Secret and the key. The gateway pods cannot start either until it is fixed.
	ReasonKafkaSecretInvalid = "KafkaSecretInvalid"
	// ReasonTopicError (KafkaReady=False): Kafka answered but refused to create, grow or
	// configure a topic.
	ReasonTopicError = "TopicError"
)
