// Package controllers holds the TCPGateway reconciler and the pure builders of the objects it
// owns: one file per owned kind (configmap.go, statefulset.go, services.go, pdb.go), the status
// conditions (conditions.go) and the Kafka topics (kafka_topics.go). Builders take the
// TCPGateway and return the desired object; only the reconciler talks to the API server.
package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// Labels and annotations the operator writes.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelManagedBy = "app.kubernetes.io/managed-by"

	// AppName is the app.kubernetes.io/name of every owned object.
	AppName = "tcpgateway"
	// ManagedBy is the app.kubernetes.io/managed-by of every owned object; the manager's cache
	// only holds objects with it.
	ManagedBy = "tcpgateway-operator"

	// AnnotationSpecHash on an owned object is a hash of the desired state it was written
	// from; the reconciler patches the object only when the desired hash differs.
	AnnotationSpecHash = "tcpgateway.io/spec-hash"
	// AnnotationConfigHash on the pod template is a hash of the rendered gateway.yaml, so a
	// configuration change rolls the pods.
	AnnotationConfigHash = "tcpgateway.io/config-hash"
	// AnnotationManagedAnnotations lists (comma-separated) the user-supplied annotation keys
	// the operator put on an object, so that a key removed from the spec is removed from the
	// object while annotations written by others (cloud controllers) stay.
	AnnotationManagedAnnotations = "tcpgateway.io/managed-annotations"

	// FinalizerTopics holds a TCPGateway with kafka.deletionPolicy Delete until its topics
	// are deleted.
	FinalizerTopics = "tcpgateway.io/kafka-topics"
)

// Names of the owned objects.
func configMapName(gw *v1alpha1.TCPGateway) string       { return gw.Name + "-config" }
func headlessServiceName(gw *v1alpha1.TCPGateway) string { return gw.Name + "-headless" }
func clientServiceName(gw *v1alpha1.TCPGateway) string   { return gw.Name }
func statefulSetName(gw *v1alpha1.TCPGateway) string     { return gw.Name }
func pdbName(gw *v1alpha1.TCPGateway) string             { return gw.Name }
func networkPolicyName(gw *v1alpha1.TCPGateway) string   { return gw.Name }
func hpaName(gw *v1alpha1.TCPGateway) string             { return gw.Name }

// selectorLabels select the gateway pods of one TCPGateway. They are immutable on the
// StatefulSet, so they never change.
func selectorLabels(gw *v1alpha1.TCPGateway) map[string]string {
	return map[string]string{LabelName: AppName, LabelInstance: gw.Name}
}

// objectLabels go on every owned object and on the pods.
func objectLabels(gw *v1alpha1.TCPGateway) map[string]string {
	l := selectorLabels(gw)
	l[LabelComponent] = "gateway"
	l[LabelManagedBy] = ManagedBy
	return l
}

// topicNames resolves the Kafka topic names: the spec's, or <namespace>.<name>.downlink and
// <namespace>.<name>.receipts.
func topicNames(gw *v1alpha1.TCPGateway) (downlink, receipts string) {
	downlink, receipts = gw.Spec.Kafka.DownlinkTopic, gw.Spec.Kafka.ReceiptsTopic
	if downlink == "" {
		downlink = gw.Namespace + "." + gw.Name + ".downlink"
	}
	if receipts == "" {
		receipts = gw.Namespace + "." + gw.Name + ".receipts"
	}
	return downlink, receipts
}

// replicas is spec.replicas, or its schema default for objects built in Go.
func replicas(gw *v1alpha1.TCPGateway) int32 {
	if gw.Spec.Replicas == nil {
		return v1alpha1.DefaultReplicas
	}
	return *gw.Spec.Replicas
}

// hashOf is a short, stable hash of v's JSON encoding (encoding/json sorts map keys).
func hashOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only API types go in here; they always marshal.
		panic("controllers: hashing: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// specHash is the value of AnnotationSpecHash for an object with these labels, annotations
// (AnnotationSpecHash itself excluded) and spec.
func specHash(labels, annotations map[string]string, spec any) string {
	a := maps.Clone(annotations)
	delete(a, AnnotationSpecHash)
	return hashOf(struct {
		Labels      map[string]string `json:"labels,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
		Spec        any               `json:"spec"`
	}{labels, a, spec})
}

// managedAnnotationsValue is AnnotationManagedAnnotations for user annotations user.
func managedAnnotationsValue(user map[string]string) string {
	return strings.Join(slices.Sorted(maps.Keys(user)), ",")
}

// eventsTopicName resolves the session events topic: the spec's, or
// <namespace>.<name>.session-events.
func eventsTopicName(gw *v1alpha1.TCPGateway) string {
	if t := gw.Spec.Kafka.EventsTopic; t != "" {
		return t
	}
	return gw.Namespace + "." + gw.Name + ".session-events"
}
