//go:build e2e

// Package e2e holds whole-system tests: a real control plane with node agents that run the
// gateway pods as local processes (test/cluster), the operator in-process, a real Kafka
// broker (test/kafkatest) and SDK clients connecting through the simulated load balancer.
//
// Run with: KUBEBUILDER_ASSETS=$(hack/k8s.sh) go test -tags e2e -count=1 -v ./test/e2e/
package e2e

import (
	"os"
	"testing"

	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }
