//go:build bench

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/test/tlstest"
)

// TLS is the server kind of cmd/gateway from the work tree with listen.tls: it terminates TLS
// itself (crypto/tls instead of netpoll).
const TLS = "tls"

// TestTLSAgainstPlaintext measures, in one run, the idle memory per connection and the CPU per
// request of the work tree's gateway with TLS to clients (listen.tls) next to the same binary
// in plaintext, and next to the gateway built at TCPGW_BENCH_REF (default 4a08738: main
// before listen.tls) to show what the change did to the plaintext path. Each server kind runs
// TCPGW_BENCH_REPEAT (3) times, interleaved: 10000 idle, handshaken connections from 2 source
// addresses, then 1000 connections offering TCPGW_BENCH_RATE (4000) requests/s of 128 and
// 1024 bytes for TCPGW_BENCH_DURATION (10s); a load run during which other processes used
// more than TCPGW_BENCH_MAX_OTHER (0.15) cores is repeated, at most twice; TCPGW_BENCH_IDLE=0
// skips the idle part. About 12 minutes on a quiet machine:
//
//	go test -count=1 -tags bench -run TestTLSAgainstPlaintext -v -timeout 60m ./test/bench/
func TestTLSAgainstPlaintext(t *testing.T) {
	const conns = 10000
	ref := envOr(t, "TCPGW_BENCH_REF", "4a08738")
	rate, duration, repeat, maxOther := loadSettings(t)
	const maxAttempts = 3
	setNice(t)
	ctx, root, env := startEnv(t, 50*time.Minute)

	// The certificate: ECDSA P-256, as cert-manager issues by default for ECDSA; the
	// client trusts its CA (-ca).
	ca, err := tlstest.NewCA("bench CA")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(1)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := tlstest.NewSecretDir(env.Dir, pair)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(env.Dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	tlsLines := fmt.Sprintf("  tls:\n    certFile: %s\n    keyFile: %s\n", secret.CertFile(), secret.KeyFile())
	refVariant, refCommit, err := BuildGatewayAt(ctx, root, env.Dir, Reference, ref)
	if err != nil {
		t.Fatal(err)
	}
	env.Variants = map[string]Variant{
		TLS:       {Bin: env.Bins.Gateway, Config: strings.Replace(configYAML, "limits:\n", tlsLines+"limits:\n", 1), BenchArgs: []string{"-ca", caFile}},
		Reference: refVariant,
	}
	env.IdleAddresses = 2
	head := workTreeCommit(ctx, t, root)
	kinds := []string{Reference, Gateway, TLS}
	t.Logf("reference %s, HEAD %s", refCommit, head)

	rep := &Report{}
	idleRSS, idleHeap := map[string][]float64{}, map[string][]float64{}
	idleRuns := repeat
	if os.Getenv("TCPGW_BENCH_IDLE") == "0" {
		idleRuns = 0
	}
	for i := range idleRuns {
		for _, kind := range rotate(kinds, i) {
			r, err := env.Idle(ctx, kind, conns, 1)
			if err != nil {
				t.Fatalf("idle on %s: %v", kind, err)
			}
			if r.Established != conns {
				t.Fatalf("idle on %s: %d of %d connections established", kind, r.Established, conns)
			}
			t.Logf("idle run %d %-9s: RSS %.2f KiB/conn, live heap+stacks %.2f KiB/conn", i+1, kind, r.PerConnKiB, r.HeapPerConnKiB)
			rep.Idle = append(rep.Idle, r)
			idleRSS[kind] = append(idleRSS[kind], r.PerConnKiB)
			idleHeap[kind] = append(idleHeap[kind], r.HeapPerConnKiB)
		}
	}
	var specs []LoadSpec
	for _, payload := range []int{128, 1024} {
		specs = append(specs, LoadSpec{Conns: 1000, Payload: payload, Rate: rate, Warmup: 2 * time.Second, Duration: duration})
	}
	for i := range repeat {
		for _, spec := range specs {
			for _, kind := range rotate(kinds, i) {
				// A run during which other processes used more than maxOther cores is
				// repeated (the last attempt is kept regardless), as TestCompare does.
				var o *LoadOutcome
				for attempt := 1; attempt <= maxAttempts; attempt++ {
					if o, err = env.Load(ctx, kind, spec); err != nil {
						t.Fatalf("load %+v on %s: %v", spec, kind, err)
					}
					if o.OtherCores <= maxOther || attempt == maxAttempts {
						break
					}
					rep.Discarded++
					t.Logf("load run %d %4d B %-9s: other processes used %.2f cores: repeating", i+1, spec.Payload, kind, o.OtherCores)
				}
				r := o.Result
				t.Logf("load run %d %4d B %-9s: %.0f ok/s, failed %s, p50 %.0f µs, p99 %.0f µs, CPU %.1f µs/req (%.2f cores; other %.2f)",
					i+1, spec.Payload, kind, r.Throughput, failedText(r), r.Latency.P50, r.Latency.P99, o.CPUMicrosPerRequest, o.CPUCores, o.OtherCores)
				rep.Load = append(rep.Load, o)
			}
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "| median of %d (min–max) | reference %s | HEAD %s plaintext | HEAD TLS | TLS / plaintext | plaintext / reference |\n|---|---:|---:|---:|---:|---:|\n",
		repeat, refCommit, head)
	row := func(name string, runs map[string][]float64) {
		cell := func(k string) string {
			return fmt.Sprintf("**%.2f** (%.2f–%.2f)", Median(runs[k]), slices.Min(runs[k]), slices.Max(runs[k]))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2f | %.3f |\n", name, cell(Reference), cell(Gateway), cell(TLS),
			Median(runs[TLS])/Median(runs[Gateway]), Median(runs[Gateway])/Median(runs[Reference]))
	}
	if idleRuns > 0 {
		row(fmt.Sprintf("idle RSS KiB per connection (%d)", conns), idleRSS)
		row(fmt.Sprintf("idle live heap+stacks KiB per connection (%d)", conns), idleHeap)
	}
	for _, spec := range specs {
		cpu, p50, p99 := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
		for _, o := range rep.Load {
			if o.Spec == spec {
				cpu[o.Server] = append(cpu[o.Server], o.CPUMicrosPerRequest)
				p50[o.Server] = append(p50[o.Server], o.Result.Latency.P50)
				p99[o.Server] = append(p99[o.Server], o.Result.Latency.P99)
			}
		}
		name := fmt.Sprintf("%d conns, %d B, %.0f req/s", spec.Conns, spec.Payload, spec.Rate)
		row("CPU µs per request, "+name, cpu)
		row("p50 µs, "+name, p50)
		row("p99 µs, "+name, p99)
	}
	fmt.Fprintf(&b, "\n%d load runs repeated because other processes loaded the machine.\n", rep.Discarded)
	b.WriteString("\n" + rep.Markdown())
	t.Log("\n" + b.String())
	if out := os.Getenv("TCPGW_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// rotate is kinds started at i: each kind runs first, second and third in turn.
func rotate(kinds []string, i int) []string {
	i %= len(kinds)
	return append(slices.Clone(kinds[i:]), kinds[:i]...)
}
