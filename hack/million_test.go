package hack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestMillionScriptSmall runs hack/million.sh at a small size (600 connections over 2 gateway
// processes): the script that holds 1M idle connections on a large machine must still check
// its settings, build, start, connect, measure and clean up here.
func TestMillionScriptSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out := t.TempDir()
	cmd := exec.CommandContext(ctx, "bash", "million.sh")
	cmd.Env = append(os.Environ(), "CONNS=600", "GATEWAYS=2", "HOLD=1s", "MEASURE=2s", "RAMP=2000", "OUT="+out)
	cmd.WaitDelay = 10 * time.Second
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("million.sh: %v\n%s", err, b)
	}
	line := regexp.MustCompile(`million: established 600 of 600, failed or lost 0; gateways together: RSS [0-9.]+ KiB, live heap\+stacks ([0-9.]+) KiB per connection`)
	if !line.Match(b) {
		t.Fatalf("no summary line for 600 connections:\n%s", b)
	}
	summary, err := os.ReadFile(filepath.Join(out, "summary.txt"))
	if err != nil || len(regexp.MustCompile(`(?m)^\| [01] \| 300 \|`).FindAll(summary, -1)) != 2 {
		t.Fatalf("summary.txt (%v) lacks a row of 300 connections per gateway:\n%s", err, summary)
	}
}
