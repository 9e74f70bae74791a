//go:build e2e

// Package e2e holds whole-system tests: a real control plane with node agents that run pods
// as local processes (test/cluster), the operator installed with the Helm chart (its pod
// runs cmd/manager as a process, with its ServiceAccount's RBAC), a real Kafka broker
// (test/kafkatest) and SDK clients connecting through the simulated load balancer. The tests share one such system (started by the first that needs it); each works
// in a namespace of its own.
//
// Run with: make test-e2e (or KUBEBUILDER_ASSETS=$(hack/k8s.sh) go test -tags e2e -count=1 -v ./test/e2e/)
package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

func TestMain(m *testing.M) {
	code := kafkatest.Main(m)
	if err := stopSystem(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: stopping the system: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
