//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// startEnv starts the harness (echo backend, binaries built from the work tree) in a temporary
// directory for a test that may take up to limit; it returns the test's context, the work
// tree's root and the environment, closed when the test ends.
func startEnv(t *testing.T, limit time.Duration) (context.Context, string, *Env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewEnv(ctx, root, t.TempDir(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	return ctx, root, env
}

// Knobs, from the environment (defaults are what docs/benchmarks.md reports):
//
//	TCPGW_BENCH_RATE      offered requests/s of the load scenarios (4000)
//	TCPGW_BENCH_DURATION  measured window of each load run (10s; plus a 2 s warm-up)
//	TCPGW_BENCH_REPEAT    runs of each load scenario per server, interleaved (3)
//	TCPGW_BENCH_IDLE      "0" skips the idle-memory scenarios
//	TCPGW_BENCH_OUT       file to write the markdown tables to
//	TCPGW_BENCH_NICE      niceness of the measured processes (-10; 0: as they are)
//	TCPGW_BENCH_MAX_OTHER a load run during which other processes used more cores than this
//	                      is repeated, at most twice (0.15)
func setNice(t *testing.T) {
	n, err := strconv.Atoi(envOr(t, "TCPGW_BENCH_NICE", "-10"))
	if err != nil {
		t.Fatal(err)
	}
	Nice = n
	t.Cleanup(func() { Nice = 0 })
}

func envOr(t *testing.T, name, def string) string {
	if v := os.Getenv(name); v != "" {
		t.Logf("%s=%s", name, v)
		return v
	}
	return def
}

// loadSettings reads the load runs' settings shared by the comparisons: the offered request
// rate, each run's duration, the runs per kind, and the share of a core other processes may
// use during a run before it is repeated.
func loadSettings(t *testing.T) (rate float64, duration time.Duration, repeat int, maxOther float64) {
	var err error
	if repeat, err = strconv.Atoi(envOr(t, "TCPGW_BENCH_REPEAT", "3")); err != nil || repeat < 1 {
		t.Fatalf("TCPGW_BENCH_REPEAT: want a positive count (%v)", err)
	}
	if rate, err = strconv.ParseFloat(envOr(t, "TCPGW_BENCH_RATE", "4000"), 64); err != nil {
		t.Fatal(err)
	}
	if duration, err = time.ParseDuration(envOr(t, "TCPGW_BENCH_DURATION", "10s")); err != nil {
		t.Fatal(err)
	}
	if maxOther, err = strconv.ParseFloat(envOr(t, "TCPGW_BENCH_MAX_OTHER", "0.15"), 64); err != nil {
		t.Fatal(err)
	}
	return rate, duration, repeat, maxOther
}

// TestCompare runs the whole comparison of docs/benchmarks.md in one go (about 8 minutes):
//
//	go test -tags bench -run TestCompare -v -timeout 30m ./test/bench/
func TestCompare(t *testing.T) {
	rate, duration, repeat, maxOther := loadSettings(t)
	const maxAttempts = 3
	setNice(t)

	ctx, _, env := startEnv(t, 25*time.Minute)
	servers := []string{Gateway, Baseline}
	rep := &Report{}

	if os.Getenv("TCPGW_BENCH_IDLE") != "0" {
		// 19000: each server stays under its 20000 open files; the load tool splits the
		// connections over 2 processes (and 4 source addresses).
		for _, n := range []int{10000, 19000} {
			for _, kind := range servers {
				procs := 1
				if n > 15000 {
					procs = 2
				}
				r, err := env.Idle(ctx, kind, n, procs)
				if err != nil {
					t.Fatalf("idle %d on %s: %v", n, kind, err)
				}
				t.Logf("idle %5d %-8s: %d established, RSS %d -> %d KiB, %.2f KiB/conn", n, kind, r.Established, r.RSSBeforeKiB, r.RSSAfterKiB, r.PerConnKiB)
				rep.Idle = append(rep.Idle, r)
			}
		}
	}

	var specs []LoadSpec
	for _, conns := range []int{100, 1000} {
		for _, payload := range []int{128, 1024} {
			specs = append(specs, LoadSpec{Conns: conns, Payload: payload, Rate: rate, Warmup: 2 * time.Second, Duration: duration})
		}
	}
	for i := range repeat {
		for _, spec := range specs {
			order := servers
			if i%2 == 1 {
				order = []string{servers[1], servers[0]}
			}
			for _, kind := range order {
				// Other sessions may share the machine: a run during which they used more
				// than maxOther cores is repeated (the last attempt is kept regardless).
				var o *LoadOutcome
				var err error
				for attempt := 1; attempt <= maxAttempts; attempt++ {
					if o, err = env.Load(ctx, kind, spec); err != nil {
						t.Fatalf("load %+v on %s: %v", spec, kind, err)
					}
					if o.OtherCores <= maxOther || attempt == maxAttempts {
						break
					}
					rep.Discarded++
					t.Logf("run %d load %4d conns %4d B %-8s: other processes used %.2f cores, p99 %.0f µs: repeating", i+1, spec.Conns, spec.Payload, kind, o.OtherCores, o.Result.Latency.P99)
				}
				if o.ServerLog != "" {
					t.Logf("%s log after a run with failures:\n%s", kind, o.ServerLog)
				}
				r := o.Result
				t.Logf("run %d load %4d conns %4d B %-8s: %.0f ok/s, failed %s, p50 %.0f µs, p99 %.0f µs, CPU %.1f µs/req (%.2f cores; tool %.2f, echo %.2f, other %.2f), send lag p99 %.0f µs, drops %d, retransmits %d",
					i+1, spec.Conns, spec.Payload, kind, r.Throughput, failedText(r), r.Latency.P50, r.Latency.P99,
					o.CPUMicrosPerRequest, o.CPUCores, o.ToolCores, o.EchoCores, o.OtherCores, r.SendLag.P99, o.Drops, o.Retrans)
				rep.Load = append(rep.Load, o)
			}
		}
	}

	md := rep.Markdown()
	t.Log("\n" + md + verdicts(rep))
	if out := os.Getenv("TCPGW_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(md+verdicts(rep)), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// verdicts states each target against the measured medians; the benchmark reports, it does
// not fail on them.
func verdicts(rep *Report) string {
	var s string
	for _, i := range rep.Idle {
		if i.Server == Gateway {
			s += "idle memory at " + strconv.Itoa(i.Conns) + " connections: gateway " + strconv.FormatFloat(i.PerConnKiB, 'f', 2, 64) +
				" KiB/conn, target <= 4 KiB: " + pass(i.PerConnKiB <= 4) + "\n"
		}
	}
	seen := map[LoadSpec]bool{}
	for _, o := range rep.Load {
		if seen[o.Spec] {
			continue
		}
		seen[o.Spec] = true
		p99 := func(o *LoadOutcome) float64 { return o.Result.Latency.P99 }
		cpu := func(o *LoadOutcome) float64 { return o.CPUMicrosPerRequest }
		gp, ok1 := rep.Median(o.Spec, Gateway, p99)
		bp, ok2 := rep.Median(o.Spec, Baseline, p99)
		gc, _ := rep.Median(o.Spec, Gateway, cpu)
		bc, _ := rep.Median(o.Spec, Baseline, cpu)
		if !ok1 || !ok2 {
			continue
		}
		name := strconv.Itoa(o.Spec.Conns) + " conns " + strconv.Itoa(o.Spec.Payload) + " B"
		if o.Spec.Conns >= 1000 {
			s += name + ": p99 gateway/baseline = " + strconv.FormatFloat(gp/bp, 'f', 2, 64) + ", target <= 0.5: " + pass(gp <= 0.5*bp) + "\n"
		}
		s += name + ": CPU/request gateway/baseline = " + strconv.FormatFloat(gc/bc, 'f', 2, 64) + ", target <= 1: " + pass(gc <= bc) + "\n"
	}
	return s
}

func pass(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// netpollBuffers is an init for cmd/gateway that shrinks netpoll's per-connection buffers:
// LinkBufferCap is the smallest buffer node (default 4 KiB), BufferSize the first input
// buffer (default 8 KiB).
const netpollBuffers = `package main

import "github.com/cloudwego/netpoll"

func init() {
	netpoll.LinkBufferCap = %d
	if err := netpoll.Configure(netpoll.Config{BufferSize: %d}); err != nil {
		panic(err)
	}
}
`

// TestNetpollBufferVariants measures what netpoll's buffer settings do to the gateway's idle
// memory and to its request path, with cmd/gateway built as is and with an init that sets
// them (through go build -overlay: the work tree is not touched). About 3 minutes:
//
//	go test -tags bench -run TestNetpollBufferVariants -v -timeout 30m ./test/bench/
func TestNetpollBufferVariants(t *testing.T) {
	setNice(t)
	ctx, root, env := startEnv(t, 25*time.Minute)
	dir := env.Dir
	env.Variants = map[string]Variant{}
	kinds := []string{Gateway}
	for _, v := range []struct {
		name           string
		nodeMin, input int
	}{{"gateway-4k", 4096, 4096}, {"gateway-1k", 1024, 1024}, {"gateway-512", 512, 512}} {
		bin, err := BuildGatewayVariant(ctx, root, dir, v.name, fmt.Sprintf(netpollBuffers, v.nodeMin, v.input))
		if err != nil {
			t.Fatal(err)
		}
		env.Variants[v.name] = Variant{Bin: bin}
		kinds = append(kinds, v.name)
	}
	rep := &Report{}
	for _, kind := range kinds {
		r, err := env.Idle(ctx, kind, 10000, 1)
		if err != nil {
			t.Fatalf("idle on %s: %v", kind, err)
		}
		t.Logf("idle 10000 %-12s: %.2f KiB/conn", kind, r.PerConnKiB)
		rep.Idle = append(rep.Idle, r)
	}
	for _, payload := range []int{128, 1024} {
		spec := LoadSpec{Conns: 1000, Payload: payload, Rate: 4000, Warmup: 2 * time.Second, Duration: 10 * time.Second}
		for _, kind := range kinds {
			o, err := env.Load(ctx, kind, spec)
			if err != nil {
				t.Fatalf("load on %s: %v", kind, err)
			}
			rep.Load = append(rep.Load, o)
		}
	}
	t.Log("\n" + rep.Markdown())
}
