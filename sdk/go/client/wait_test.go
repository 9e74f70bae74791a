package client_test

import (
	"testing"
	"time"
)

// waitFor checks cond every 10 ms until it holds, failing the test after timeout. It is
// test/wait.For of the main module, repeated here because this module must not require that
// one (and with it Kubernetes and Kafka).
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
