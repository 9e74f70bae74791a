//go:build bench

package bench

// TestFloor measures the gateway against the floor, in one run (docs/benchmarks.md, "Toward
// the floor"):
//
//	go test -count=1 -tags bench -run TestFloor -v -timeout 60m ./test/bench/
//
// Three server kinds, each a fresh process per run, the runs interleaved (the kinds take turns
// going first):
//
//   - gateway: cmd/gateway with the harness's configuration and a Kafka downlink; a broadcast
//     is a push.All() record published to its downlink topic.
//   - netpoll: test/bench/refserver -mode netpoll, a raw netpoll server with the gateway's
//     buffer size (limits.connectionBufferBytes, 1024): it answers the HANDSHAKE with a
//     HANDSHAKE_ACK, holds the connection, and broadcasts with one write and flush per
//     delivery.
//   - writev: test/bench/refserver -mode writev, Go's net package, one writev system call per
//     delivery: the floor for CPU per delivery without merging.
//   - websocket (only when TCPGW_FLOOR_KINDS names it): the gateway as in "gateway", with
//     listen.websocket, its receivers connected over WebSocket (test/wsclient) instead of TCP:
//     WebSocket next to TCP in the same run (docs/benchmarks.md, "WebSocket").
//
// Each run: the server's RSS and live heap+stacks (after a forced GC, LiveHeapKiB) 1 s after
// start; TCPGW_FLOOR_CONNS receivers (10000; a process of their own, receivers.go, from 3
// source addresses) connect and handshake; 3 s later RSS and heap again → idle memory per
// connection. Then TCPGW_FLOOR_BROADCASTS (3) single broadcasts of a 64-byte payload to every
// connection, and TCPGW_FLOOR_BURSTS (3) bursts of TCPGW_FLOOR_BURST (100) broadcasts back to
// back; for each, the server's CPU time (its threads' runtimes to the ns, CPUNanos; utime+stime in
// 10 ms ticks where the kernel gives no sched files) from just before the broadcast
// until the receivers have every delivery, over the deliveries. TCPGW_FLOOR_REPEAT (3) runs per
// kind; TCPGW_FLOOR_KINDS (gateway,netpoll,writev) picks kinds; TCPGW_FLOOR_REF=<commit> adds
// the kind "reference", cmd/gateway built at that commit (BuildGatewayAt), measured as the
// gateway is; TCPGW_FLOOR_REF_BURSTS (TCPGW_FLOOR_BURSTS) is the bursts per run of netpoll
// and writev, which take ~10 CPU-seconds each; TCPGW_FLOOR_OUT writes the summary there;
// TCPGW_FLOOR_PROFILE=<dir> saves a CPU profile of each single broadcast there (floor_profile.go). Before each broadcast the test waits (≤ 20 s) for a second in which the
// machine is below 0.3 busy cores.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

// Reference server kinds of TestFloor (besides Gateway).
const (
	RawNetpoll = "netpoll"
	OneWritev  = "writev"
	// WebSocketKind is cmd/gateway from the work tree with listen.websocket, its receivers
	// connected over WebSocket (test/wsclient) instead of TCP: the same process otherwise.
	WebSocketKind = "websocket"
)

const floorPayload = 64

// floorRun is one server's run.
type floorRun struct {
	kind                        string
	established                 int
	rssPerConn, heapPerConn     float64   // KiB
	single                      []float64 // server CPU µs per delivery, per broadcast
	singleToLast                []float64 // ms, broadcast sent → last receipt
	burst                       []float64 // deliveries per server CPU-second, per burst
	burstUserShare, burstToLast []float64
	// Per burst, from the gateway's /metrics (gateway kinds only): PUSH frames per socket write.
	burstFramesPerWrite []float64
	burstToFirst        []float64 // ms, the call → the first receipt (gateway kinds only)
}

// floorServer is a running server of one kind and the way to broadcast through it.
type floorServer struct {
	p         *Proc
	addr      string
	wsURL     string // with WebSocketKind: where the receivers connect
	pprof     string
	broadcast func(ctx context.Context, n int) error
	// admin is the gateway's admin address ("" for the reference servers); split is, after a
	// broadcast, how many of its records each partition got.
	admin string
	split []int
}

func TestFloor(t *testing.T) {
	setNice(t)
	conns := envInt(t, "TCPGW_FLOOR_CONNS", 10000)
	repeat := envInt(t, "TCPGW_FLOOR_REPEAT", 3)
	singles := envInt(t, "TCPGW_FLOOR_BROADCASTS", 3)
	burst := envInt(t, "TCPGW_FLOOR_BURST", 100)
	bursts := envInt(t, "TCPGW_FLOOR_BURSTS", 3)
	refBursts := envInt(t, "TCPGW_FLOOR_REF_BURSTS", bursts)
	kinds := strings.Split(envOr(t, "TCPGW_FLOOR_KINDS", Gateway+","+RawNetpoll+","+OneWritev), ",")
	ref := os.Getenv("TCPGW_FLOOR_REF")
	if ref != "" {
		kinds = append(kinds[:1], append([]string{Reference}, kinds[1:]...)...)
	}
	if repeat < 1 || conns < 1 {
		t.Fatal("TCPGW_FLOOR_REPEAT and TCPGW_FLOOR_CONNS must be positive")
	}

	ctx, root, env := startEnv(t, 55*time.Minute)
	refBin := filepath.Join(env.Dir, "refserver")
	build := exec.CommandContext(ctx, "go", "build", "-o", refBin, "./test/bench/refserver")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build refserver: %v\n%s", err, out)
	}
	gateways := map[string]string{Gateway: env.Bins.Gateway, WebSocketKind: env.Bins.Gateway}
	if ref != "" {
		t.Logf("building the gateway at %s", ref)
		v, commit, err := BuildGatewayAt(ctx, root, env.Dir, Reference, ref)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("reference: %s", commit)
		gateways[Reference] = v.Bin
	}
	var pub *push.Publisher
	var bootstrap, topic, receipts string
	if slices.Contains(kinds, Gateway) || slices.Contains(kinds, WebSocketKind) || ref != "" {
		bootstrap = kafkatest.Bootstrap(t)
		topic = kafkatest.CreateTopic(t, bootstrap, floorPartitions)
		receipts = kafkatest.CreateTopic(t, bootstrap, 6)
		var err error
		if pub, err = push.New(ctx, push.Options{Brokers: []string{bootstrap}, Topic: topic}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pub.Close() })
	}
	load0 := loadAvg()
	start := func(kind string, run int) (*floorServer, error) {
		if bin, ok := gateways[kind]; ok {
			return startFloorGateway(ctx, env, bin, kind, bootstrap, topic, receipts, pub, run)
		}
		return startRefServer(ctx, refBin, kind)
	}

	runs := map[string][]*floorRun{}
	for i := range repeat {
		order := slices.Clone(kinds)
		for range i % len(order) { // each kind goes first in turn
			order = append(order[1:], order[0])
		}
		for _, kind := range order {
			n := bursts
			if kind == RawNetpoll || kind == OneWritev {
				n = refBursts
			}
			r, err := floorMeasure(ctx, t, env, start, kind, i+1, conns, singles, burst, n)
			if err != nil {
				t.Fatalf("%s run %d: %v", kind, i+1, err)
			}
			runs[kind] = append(runs[kind], r)
		}
	}
	summary := floorSummary(kinds, runs, conns, burst, load0, loadAvg())
	t.Logf("\n%s", summary)
	if out := os.Getenv("TCPGW_FLOOR_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(summary), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// startFloorGateway starts a gateway reading topic (receipts: its receipts topic) under a server id of its own (so it starts
// at the end of every partition) and waits until it is ready.
func startFloorGateway(ctx context.Context, env *Env, bin, name, bootstrap, topic, receipts string, pub *push.Publisher, run int) (*floorServer, error) {
	var addrs [4]string
	for i := range addrs {
		a, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	addr, admin, pprof := addrs[0], addrs[1], addrs[2]
	kind := "floor-" + name + "-" + strconv.Itoa(run)
	cfg := filepath.Join(env.Dir, "gateway-"+kind+".yaml")
	body := fmt.Appendf(nil, configYAML, kind, addr, admin, filepath.Join(env.Dir, kind+".sock"), env.SecretFile, env.EchoAddr, pprof)
	body = fmt.Appendf(body, dlConfigKafka, bootstrap, topic, receipts)
	wsURL := ""
	if name == WebSocketKind {
		body = bytes.Replace(body, []byte("listen:\n"), fmt.Appendf(nil, "listen:\n  websocket:\n    address: %s\n", addrs[3]), 1)
		wsURL = "ws://" + addrs[3] + "/tcpgw"
	}
	if err := os.WriteFile(cfg, body, 0o600); err != nil {
		return nil, err
	}
	p, err := Start(ctx, name, bin, "-config", cfg)
	if err != nil {
		return nil, err
	}
	if err := waitListening(p, addr, 15*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	if err := waitReady(ctx, "http://"+admin+"/readyz", 60*time.Second); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%w:\n%s", err, p.Output())
	}
	srv := &floorServer{p: p, addr: addr, wsURL: wsURL, pprof: "http://" + pprof + "/debug/pprof", admin: admin}
	srv.broadcast = func(ctx context.Context, n int) error {
		// Published back to back: the publisher's 1 ms batching puts them in few requests.
		errs := make(chan error, n)
		var mu sync.Mutex
		split := make([]int, floorPartitions)
		var wg sync.WaitGroup
		wg.Add(n)
		for range n {
			pub.PushAsync(push.Message{Target: push.All(), Payload: dlPayload(time.Now(), floorPayload)}, func(id string, err error) {
				mu.Lock()
				split[partitionOf(id)]++
				mu.Unlock()
				errs <- err
				wg.Done()
			})
		}
		wg.Wait()
		close(errs)
		srv.split = split
		for err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
	return srv, nil
}

// waitReady polls a readiness URL until it answers 200 (at most limit).
func waitReady(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready after %s (last: %v)", url, limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startRefServer starts test/bench/refserver in the given mode.
func startRefServer(ctx context.Context, bin, mode string) (*floorServer, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	control, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := Start(ctx, mode, bin, "-mode", mode, "-addr", addr, "-control", control, "-buffer", "1024")
	if err != nil {
		return nil, err
	}
	if err := waitListening(p, addr, 15*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	if err := waitListening(p, control, 15*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return &floorServer{p: p, addr: addr, pprof: "http://" + control + "/debug/pprof",
		broadcast: func(ctx context.Context, n int) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost,
				fmt.Sprintf("http://%s/broadcast?n=%d&payload=%d", control, n, floorPayload), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("broadcast: %s %s", resp.Status, b)
			}
			return nil
		}}, nil
}

// floorMeasure runs one server of kind: idle memory, single broadcasts, bursts.
func floorMeasure(ctx context.Context, t *testing.T, env *Env, start func(string, int) (*floorServer, error),
	kind string, run, conns, singles, burst, bursts int) (*floorRun, error) {
	srv, err := start(kind, run)
	if err != nil {
		return nil, err
	}
	defer srv.p.Stop()
	time.Sleep(time.Second) // let start-up garbage settle
	rss0, err := RSSKiB(srv.p.Pid)
	if err != nil {
		return nil, err
	}
	heap0, err := LiveHeapKiB(ctx, srv.pprof)
	if err != nil {
		return nil, err
	}
	sources := strings.Split(env.nextSources(max(3, conns/8000+1)), ",")
	rc, err := startReceivers(ctx, receiversSpec{Addr: srv.addr, WebSocketURL: srv.wsURL, SecretFile: env.SecretFile, Conns: conns, Sources: sources})
	if err != nil {
		return nil, err
	}
	defer rc.Stop()
	time.Sleep(3 * time.Second) // established; let them settle as Idle does
	rss1, err := RSSKiB(srv.p.Pid)
	if err != nil {
		return nil, err
	}
	heap1, err := LiveHeapKiB(ctx, srv.pprof)
	if err != nil {
		return nil, err
	}
	r := &floorRun{kind: kind, established: conns,
		rssPerConn: float64(rss1-rss0) / float64(conns), heapPerConn: float64(heap1-heap0) / float64(conns)}
	t.Logf("%s run %d: idle %d connections: RSS %.2f KiB, live heap+stacks %.2f KiB per connection",
		kind, run, conns, r.rssPerConn, r.heapPerConn)

	// deliver broadcasts n records and returns the server's CPU µs (user, sys) and the time
	// from the call to the last receipt.
	// On a gateway it also scrapes /metrics before and after (outside the CPU measured): how
	// the burst's writes were merged (mech, nil for the reference servers).
	deliver := func(n int, profile string) (cpuUs float64, userUs int64, toLast time.Duration, mech *burstMechanism, err error) {
		WaitQuiet(ctx, 0.3, 20*time.Second)
		profiled := func() error { return nil }
		if profile != "" {
			profiled = floorProfile(ctx, srv.pprof, profile, 2)
		}
		st0, err := rc.Stats(ctx, true)
		if err != nil {
			return 0, 0, 0, nil, err
		}
		var m0 floorCounters
		if srv.admin != "" {
			if m0, err = scrapeFloor(srv.admin); err != nil {
				return 0, 0, 0, nil, err
			}
		}
		c0 := cpuNow(srv.p.Pid)
		u0, _ := dlUserSys(srv.p.Pid)
		sent := time.Now()
		if err := srv.broadcast(ctx, n); err != nil {
			return 0, 0, 0, nil, err
		}
		want := st0.Pushes + int64(n*conns)
		st, err := rc.Wait(ctx, want)
		if err != nil {
			return 0, 0, 0, nil, err
		}
		c1 := cpuNow(srv.p.Pid)
		u1, _ := dlUserSys(srv.p.Pid)
		if st.Pushes < want || st.Lost > 0 {
			return 0, 0, 0, nil, fmt.Errorf("%d of %d deliveries arrived within 30 s, %d connections lost", st.Pushes-st0.Pushes, n*conns, st.Lost)
		}
		if srv.admin != "" {
			m1, err := scrapeAfter(srv.admin, m0, n*conns)
			if err != nil {
				return 0, 0, 0, nil, err
			}
			m := mechanism(m0, m1, n*conns, srv.split, time.Duration(st.FirstNs-sent.UnixNano()))
			mech = &m
		}
		if err := profiled(); err != nil {
			return 0, 0, 0, nil, fmt.Errorf("profile: %w", err)
		}
		return c1 - c0, u1 - u0, time.Duration(st.LastNs - sent.UnixNano()), mech, nil
	}
	if (kind == Gateway || kind == Reference || kind == WebSocketKind) && (singles > 0 || bursts > 0) {
		if _, _, _, _, err := deliver(1, ""); err != nil { // the first record also proves delivery works
			return nil, fmt.Errorf("first broadcast: %w", err)
		}
	}
	for i := range singles {
		cpu, _, toLast, _, err := deliver(1, fmt.Sprintf("%s-run%d-broadcast%d", kind, run, i+1))
		if err != nil {
			return nil, err
		}
		r.single = append(r.single, cpu/float64(conns))
		r.singleToLast = append(r.singleToLast, ms(toLast))
		t.Logf("%s run %d broadcast %d: %.2f µs CPU per delivery, last receipt %.1f ms after the call",
			kind, run, i+1, r.single[i], ms(toLast))
	}
	for i := range bursts {
		cpu, user, toLast, mech, err := deliver(burst, "")
		if err != nil {
			return nil, err
		}
		how := ""
		if mech != nil {
			r.burstFramesPerWrite = append(r.burstFramesPerWrite, mech.framesPerWrite)
			r.burstToFirst = append(r.burstToFirst, ms(mech.toFirst))
			how = "; " + mech.line
		}
		r.burst = append(r.burst, float64(burst*conns)/(cpu/1e6))
		r.burstUserShare = append(r.burstUserShare, float64(user)/max(cpu, 1))
		r.burstToLast = append(r.burstToLast, ms(toLast))
		t.Logf("%s run %d burst %d (%d × %d): %.0f deliveries per CPU-second (user %.0f%%), last receipt %.1f ms after the call%s",
			kind, run, i+1, burst, conns, r.burst[i], 100*r.burstUserShare[i], ms(toLast), how)
	}
	if exited, werr := srv.p.Exited(); exited {
		return nil, fmt.Errorf("%s exited during the run (%v):\n%s", kind, werr, srv.p.Output())
	}
	return r, nil
}

// cpuNow is a process's CPU time so far in µs, to the nanosecond where the kernel gives the
// threads' runtimes (CPUNanos), else in 10 ms ticks (CPUMicros).
func cpuNow(pid int) float64 {
	if ns, ok := CPUNanos(pid); ok {
		return float64(ns) / 1e3
	}
	us, _ := CPUMicros(pid)
	return float64(us)
}

// loadAvg is the machine's 1-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// stat is "median (min–max)" of v, formatted with f.
func stat(v []float64, f string) (string, float64) {
	if len(v) == 0 {
		return "–", 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := Median(slices.Clone(s))
	return fmt.Sprintf("**"+f+"** ("+f+"–"+f+")", m, s[0], s[len(s)-1]), m
}

// floorSummary renders the table of docs/benchmarks.md: medians over every run of a kind,
// and the gateway's ratios to the references.
func floorSummary(kinds []string, runs map[string][]*floorRun, conns, burst int, load0, load1 string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d connections, %d runs per kind, load average %s at the start, %s at the end\n\n", conns, len(runs[kinds[0]]), load0, load1)
	rows := []struct {
		name, f string
		get     func(*floorRun) []float64
		spread  bool
	}{
		{"idle RSS KiB per connection", "%.2f", func(r *floorRun) []float64 { return []float64{r.rssPerConn} }, false},
		{"idle live heap+stacks KiB per connection", "%.2f", func(r *floorRun) []float64 { return []float64{r.heapPerConn} }, false},
		{"one broadcast: server CPU µs per delivery", "%.2f", func(r *floorRun) []float64 { return r.single }, false},
		{"one broadcast: call → last receipt, ms", "%.1f", func(r *floorRun) []float64 { return r.singleToLast }, false},
		{fmt.Sprintf("%d broadcasts back to back: deliveries per server CPU-second", burst), "%.0f", func(r *floorRun) []float64 { return r.burst }, true},
		{fmt.Sprintf("%d broadcasts back to back: call → last receipt, ms", burst), "%.1f", func(r *floorRun) []float64 { return r.burstToLast }, false},
		{fmt.Sprintf("%d broadcasts back to back: PUSH frames per socket write (gateway /metrics)", burst), "%.2f", func(r *floorRun) []float64 { return r.burstFramesPerWrite }, true},
		{fmt.Sprintf("%d broadcasts back to back: call → first receipt, ms", burst), "%.1f", func(r *floorRun) []float64 { return r.burstToFirst }, false},
	}
	b.WriteString("| measure, median (min–max) |")
	for _, k := range kinds {
		fmt.Fprintf(&b, " %s |", k)
	}
	for _, k := range kinds[1:] {
		fmt.Fprintf(&b, " %s / %s |", kinds[0], k)
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", 2*len(kinds)-1) + "\n")
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s |", row.name)
		medians := make([]float64, len(kinds))
		for i, k := range kinds {
			var all []float64
			for _, r := range runs[k] {
				all = append(all, row.get(r)...)
			}
			s, m := stat(all, row.f)
			if row.spread && len(all) > 0 {
				s += fmt.Sprintf(", spread %.2f×", slices.Max(all)/max(slices.Min(all), 1e-9))
			}
			medians[i] = m
			fmt.Fprintf(&b, " %s |", s)
		}
		for i := range kinds[1:] {
			if medians[i+1] == 0 {
				b.WriteString(" – |")
				continue
			}
			fmt.Fprintf(&b, " %.2f |", medians[0]/medians[i+1])
		}
		b.WriteString("\n")
	}
	return b.String()
}
