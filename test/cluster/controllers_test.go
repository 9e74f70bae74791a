package cluster

import (
	"slices"
	"testing"
)

// The controller-manager runs what the system needs, and not the EndpointSlice and Endpoints
// controllers, whose every sync failed on the pods' loopback addresses and flooded the events
// with FailedToUpdateEndpointSlices warnings.
func TestControllerManagerControllers(t *testing.T) {
	for _, c := range []string{"endpointslice-controller", "endpoints-controller", "endpointslice-mirroring-controller"} {
		if slices.Contains(ControllerManagerControllers, c) {
			t.Errorf("%s runs: it cannot publish loopback pod addresses and only emits warnings", c)
		}
	}
	for _, c := range []string{
		"statefulset-controller",       // gateway pods
		"deployment-controller",        // the operator (the chart's Deployment)
		"replicaset-controller",        // its pods
		"garbage-collector-controller", // deleting a TCPGateway removes what it owns
		"disruption-controller",        // the gateways' PodDisruptionBudget status
		"serviceaccount-token-controller",
		"namespace-controller",
		"horizontal-pod-autoscaler-controller", // spec.autoscaling
	} {
		if !slices.Contains(ControllerManagerControllers, c) {
			t.Errorf("%s does not run", c)
		}
	}
}
