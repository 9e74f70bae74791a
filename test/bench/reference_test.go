//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Reference is the server kind of the gateway built at TCPGW_BENCH_REF.
const Reference = "reference"

// TestIdleMemoryAgainstReference measures the idle memory per connection of cmd/gateway as
// built from the work tree and as built at a reference commit (TCPGW_BENCH_REF, default
// 72ce3ce: main before issue 12), in one run: 10000 idle, handshaken connections on a fresh
// process of each, alternating, TCPGW_BENCH_REPEAT (3) times, from 2 source addresses and
// then from one address each. Issue 12 allows at most 0.3 KiB more per connection. About 4
// minutes:
//
//	go test -count=1 -tags bench -run TestIdleMemoryAgainstReference -v -timeout 20m ./test/bench/
func TestIdleMemoryAgainstReference(t *testing.T) {
	const conns, maxGrowthKiB = 10000, 0.3
	ref := envOr(t, "TCPGW_BENCH_REF", "72ce3ce")
	repeat, err := strconv.Atoi(envOr(t, "TCPGW_BENCH_REPEAT", "3"))
	if err != nil || repeat < 1 {
		t.Fatalf("TCPGW_BENCH_REPEAT: want a positive count (%v)", err)
	}
	setNice(t)
	ctx, root, env := startEnv(t, 15*time.Minute)
	dir := env.Dir
	t.Logf("building the gateway at %s", ref)
	v, refCommit, err := BuildGatewayAt(ctx, root, dir, Reference, ref)
	if err != nil {
		t.Fatal(err)
	}
	env.Variants = map[string]Variant{Reference: v}
	head := workTreeCommit(ctx, t, root)
	t.Logf("reference %s (bench flags %v), HEAD %s", refCommit, v.BenchArgs, head)

	// Two spreads of the same connections: over 2 source addresses (per-address state is
	// shared), and one address each, as phones on distinct addresses are (per-address state
	// is per connection).
	rep := &Report{}
	var b strings.Builder
	fmt.Fprintf(&b, "| %d idle connections, median of %d (min–max) | | reference %s | HEAD %s | difference | ratio | target ≤ +%.1f KiB |\n|---|---|---:|---:|---:|---:|---|\n",
		conns, repeat, refCommit, head, maxGrowthKiB)
	for _, addresses := range []int{2, conns} {
		env.IdleAddresses = addresses
		perConn, heapPerConn := map[string][]float64{}, map[string][]float64{}
		for i := range repeat {
			order := []string{Reference, Gateway}
			if i%2 == 1 {
				order = []string{Gateway, Reference}
			}
			for _, kind := range order {
				r, err := env.Idle(ctx, kind, conns, 1)
				if err != nil {
					t.Fatalf("idle on %s: %v", kind, err)
				}
				if r.Established != conns {
					t.Fatalf("idle on %s: %d of %d connections established", kind, r.Established, conns)
				}
				t.Logf("%d addresses, run %d %-9s: RSS %d -> %d KiB, %.2f KiB/conn; live heap+stacks %d -> %d KiB, %.2f KiB/conn",
					addresses, i+1, kind, r.RSSBeforeKiB, r.RSSAfterKiB, r.PerConnKiB, r.HeapBeforeKiB, r.HeapAfterKiB, r.HeapPerConnKiB)
				rep.Idle = append(rep.Idle, r)
				perConn[kind] = append(perConn[kind], r.PerConnKiB)
				heapPerConn[kind] = append(heapPerConn[kind], r.HeapPerConnKiB)
			}
		}
		for _, m := range []struct {
			name string
			runs map[string][]float64
		}{{"RSS KiB per connection", perConn}, {"live heap+stacks KiB per connection", heapPerConn}} {
			r, h := m.runs[Reference], m.runs[Gateway]
			rMin, rMax, hMin, hMax := slices.Min(r), slices.Max(r), slices.Min(h), slices.Max(h)
			rMed, hMed := Median(r), Median(h)
			fmt.Fprintf(&b, "| %d source addresses | %s | **%.2f** (%.2f–%.2f) | **%.2f** (%.2f–%.2f) | **%+.2f** | %.3f | %s |\n",
				addresses, m.name, rMed, rMin, rMax, hMed, hMin, hMax, hMed-rMed, hMed/rMed, pass(hMed-rMed <= maxGrowthKiB))
		}
	}
	b.WriteString("\n" + rep.Markdown())
	t.Log("\n" + b.String())
	if out := os.Getenv("TCPGW_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// workTreeCommit names what the work tree holds: HEAD's short hash, "+changes" when it has
// uncommitted changes.
func workTreeCommit(ctx context.Context, t *testing.T, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	head := strings.TrimSpace(string(out))
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(out) > 0 {
		head += "+changes"
	}
	return head
}
