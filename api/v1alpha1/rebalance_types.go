package v1alpha1

import (
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Rebalance moves sessions off the fullest pods when the pods' session counts drift apart,
// e.g. after a scale-out, where the new pods hold nobody until clients happen to reconnect.
// The operator reads each ready pod's count every interval; when the fullest pod holds more
// than maxImbalance above the mean, it asks each pod above the mean to send GOAWAY
// (REBALANCE, with a resume token) to its surplus, paced so that the whole fleet moves at
// most rate sessions per second. Clients resume on whichever pod the load balancer picks
// (docs/operator.md#rebalance). Nothing is asked while the StatefulSet rolls out or scales,
// while a pod is not ready or draining, or while any pod's count cannot be read.
type Rebalance struct {
	// Enabled turns rebalancing on. The operator then creates the Secret <name>-rebalance
	// (the key that signs its requests to the pods, docs/security.md) and mounts it into
	// the pods, which rolls them once.
	// +required
	Enabled bool `json:"enabled"`

	// MaxImbalance is how far above the mean the fullest pod may be before a rebalance
	// starts, as a percentage of the mean ("20%"). A rebalance then moves every pod's surplus
	// above the mean, so a balanced fleet is well inside this bound and does not oscillate.
	// +kubebuilder:default="20%"
	// +kubebuilder:validation:Pattern=`^([1-9][0-9]?|[1-9][0-9][0-9]|1000)%$`
	// +optional
	MaxImbalance string `json:"maxImbalance,omitempty"`

	// Rate is the most sessions per second the whole fleet is asked to move, shared among
	// the pods that shed in proportion to their surplus (each at least 1/s). It bounds the
	// reconnect load on the load balancer, the receiving pods and the auth backend.
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +optional
	Rate int32 `json:"rate,omitempty"`

	// Interval is how often the operator reads the counts, and the least time between the
	// end of one rebalance (its paced GOAWAYs sent) and the next.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="must be a duration from 1s to 1h"
	// +optional
	Interval Duration `json:"interval,omitempty"`
}

// MaxImbalancePercent is MaxImbalance as a number, 20 when unset. The schema admits only
// values that parse.
func (r *Rebalance) MaxImbalancePercent() int {
	v, err := strconv.Atoi(strings.TrimSuffix(r.MaxImbalance, "%"))
	if err != nil || v <= 0 {
		return 20
	}
	return v
}

// RebalanceStatus reports the last rebalance.
type RebalanceStatus struct {
	// State: Balanced (within maxImbalance), Rebalancing (pods are sending their paced
	// GOAWAYs), Waiting (a rollout, a pod not ready or draining, or a count that could not be
	// read: nothing is asked meanwhile; Message says which).
	// +optional
	State string `json:"state,omitempty"`

	// Message details the state: the counts read, or why the operator waits.
	// +optional
	Message string `json:"message,omitempty"`

	// Imbalance is how far above the mean the fullest pod was at the last read, e.g. "35%".
	// +optional
	Imbalance string `json:"imbalance,omitempty"`

	// LastStartTime is when the last rebalance was asked.
	// +optional
	LastStartTime *metav1.Time `json:"lastStartTime,omitempty"`

	// LastEndTime is when its paced GOAWAYs were due to be all sent.
	// +optional
	LastEndTime *metav1.Time `json:"lastEndTime,omitempty"`

	// LastMoved is how many sessions the last rebalance asked the pods to move.
	// +optional
	LastMoved int32 `json:"lastMoved,omitempty"`
}

// Rebalance states.
const (
	RebalanceBalanced    = "Balanced"
	RebalanceRebalancing = "Rebalancing"
	RebalanceWaiting     = "Waiting"
)
