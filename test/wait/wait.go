// Package wait polls a condition in tests, for state that offers no event to wait on
// (metrics, registries, counters of other processes). It is bounded in time and says what it
// waited for when it gives up.
package wait

import (
	"testing"
	"time"
)

// Interval between two checks.
const Interval = 10 * time.Millisecond

// For checks cond until it holds, failing the test after timeout.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(Interval)
	}
}
