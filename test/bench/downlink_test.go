//go:build bench

package bench

// TestDownlink measures Kafka-to-client delivery through one gateway process (docs/benchmarks.md,
// "Downlink (Kafka to clients)"):
//
//	go test -count=1 -tags bench -run TestDownlink -v -timeout 20m ./test/bench/
//
// Knobs: TCPGW_BENCH_NICE (as TestCompare, default -10), TCPGW_DL_RATES ("1000,10000"),
// TCPGW_DL_DURATION (10s), TCPGW_DL_CONNS (1000 latency receivers), TCPGW_DL_BROADCAST_CONNS
// (10000), TCPGW_DL_BROADCAST_REPEAT (3), TCPGW_DL_LATENCY_REPEAT (3), TCPGW_DL_OUT (file for
// the summary lines). TCPGW_KAFKA_BOOTSTRAP reuses a running broker.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

// TestMain runs the tests, or the receivers process of TestFloor when the test binary is
// re-executed as one (receivers.go).
func TestMain(m *testing.M) {
	if os.Getenv(receiversEnv) != "" {
		os.Exit(receiversMain())
	}
	os.Exit(kafkatest.Main(m))
}

const dlConfigKafka = `kafka:
  brokers: [%q]
  downlinkTopic: %s
  receiptsTopic: %s
`

func envInt(t *testing.T, name string, def int) int {
	v, err := strconv.Atoi(envOr(t, name, strconv.Itoa(def)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDownlink(t *testing.T) {
	setNice(t)
	var rates []float64
	for s := range strings.SplitSeq(envOr(t, "TCPGW_DL_RATES", "1000,10000"), ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			t.Fatal(err)
		}
		rates = append(rates, r)
	}
	duration, err := time.ParseDuration(envOr(t, "TCPGW_DL_DURATION", "10s"))
	if err != nil {
		t.Fatal(err)
	}
	nLat := envInt(t, "TCPGW_DL_CONNS", 1000)
	nBC := envInt(t, "TCPGW_DL_BROADCAST_CONNS", 10000)
	repeat := envInt(t, "TCPGW_DL_BROADCAST_REPEAT", 3)
	latRepeat := envInt(t, "TCPGW_DL_LATENCY_REPEAT", 3)

	bootstrap := kafkatest.Bootstrap(t)
	downTopic := kafkatest.CreateTopic(t, bootstrap, 6)
	receiptsTopic := kafkatest.CreateTopic(t, bootstrap, 6)

	ctx, _, env := startEnv(t, 18*time.Minute)
	secret, err := os.ReadFile(env.SecretFile)
	if err != nil {
		t.Fatal(err)
	}

	// One gateway process, the harness's configuration plus Kafka.
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	pprof, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(env.Dir, "gateway-downlink.yaml")
	body := fmt.Appendf(nil, configYAML, "downlink", addr, admin, filepath.Join(env.Dir, "downlink.sock"), env.SecretFile, env.EchoAddr, pprof)
	body = fmt.Appendf(body, dlConfigKafka, bootstrap, downTopic, receiptsTopic)
	if err := os.WriteFile(cfg, body, 0o600); err != nil {
		t.Fatal(err)
	}
	gw, err := Start(ctx, "gateway", env.Bins.Gateway, "-config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Stop)
	if err := waitListening(gw, addr, 15*time.Second); err != nil {
		t.Fatal(err)
	}

	pub, err := push.New(ctx, push.Options{Brokers: []string{bootstrap}, Topic: downTopic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })

	var report strings.Builder
	fmt.Fprintf(&report, "kafka %s, topic %s (6 partitions), gateway pid %d\n", bootstrap, downTopic, gw.Pid)

	// ---- Latency: nLat receivers, user-targeted records at each rate.
	rec := newDLRecorder()
	t.Logf("connecting %d receivers", nLat)
	conns, err := dlConnectAll(ctx, addr, "", nil, secret, 0, nLat, rec)
	if len(conns) < nLat {
		t.Fatalf("only %d of %d receivers connected: %v", len(conns), nLat, err)
	}
	// The gateway starts reading at the end of each partition once it has joined; probe until
	// a push arrives.
	dlWaitReady(ctx, t, pub, rec)

	for i := range latRepeat {
		for _, rate := range rates {
			machine := WaitQuiet(ctx, 0.3, 20*time.Second)
			res := dlLatencyRun(ctx, t, pub, rec, gw.Pid, admin, nLat, rate, 2*time.Second, duration)
			res.otherBefore = machine
			t.Logf("run %d: %s", i+1, res)
			fmt.Fprintf(&report, "run %d: %s\n", i+1, res)
		}
	}
	for _, c := range conns {
		c.close()
	}
	time.Sleep(2 * time.Second) // let the gateway reap them

	// ---- Broadcast: nBC receivers (held in this process), one record to all.
	bc := newDLRecorder()
	var sources []net.IP
	for i := range 3 {
		sources = append(sources, net.IPv4(127, 0, 77, byte(2+i)))
	}
	t.Logf("connecting %d broadcast receivers", nBC)
	began := time.Now()
	bconns, err := dlConnectAll(ctx, addr, "", sources, secret, 0, nBC, bc)
	t.Logf("%d connected in %s (first error: %v)", len(bconns), time.Since(began).Round(time.Millisecond), err)
	if len(bconns) == 0 {
		t.Fatal("no broadcast receivers")
	}
	t.Cleanup(func() {
		for _, c := range bconns {
			c.close()
		}
	})
	time.Sleep(3 * time.Second)
	rss, _ := RSSKiB(gw.Pid)
	fmt.Fprintf(&report, "broadcast: %d connections held, gateway RSS %d MiB\n", len(bconns), rss/1024)
	for i := range repeat {
		machine := WaitQuiet(ctx, 0.3, 20*time.Second)
		res := dlBroadcast(ctx, t, pub, bc, gw.Pid, len(bconns))
		res.other = machine
		t.Logf("broadcast %d: %s", i+1, res)
		fmt.Fprintf(&report, "broadcast %d: %s\n", i+1, res)
		time.Sleep(time.Second)
	}
	if n := bc.lost.Load(); n > 0 {
		t.Errorf("%d broadcast connections lost", n)
	}
	t.Logf("\n%s", report.String())
	if out := os.Getenv("TCPGW_DL_OUT"); out != "" {
		_ = os.WriteFile(out, []byte(report.String()), 0o644)
	}
}

// dlWaitReady pushes to bench-0 every 300 ms until a PUSH arrives (at most 60 s).
func dlWaitReady(ctx context.Context, t *testing.T, pub *push.Publisher, rec *dlRecorder) {
	t.Helper()
	start := rec.pushes.Load()
	deadline := time.Now().Add(60 * time.Second)
	for rec.pushes.Load() == start {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatal("no PUSH arrived within 60 s: the gateway's downlink consumer is not delivering")
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := pub.Push(pctx, push.Message{Target: push.User("bench-0"), Payload: dlPayload(time.Now(), 64)})
		cancel()
		if err != nil {
			t.Logf("probe push: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(time.Second)
}

type dlLatencyResult struct {
	rate, achieved          float64
	published, delivered    int64
	pubErrors               int64
	lat, latMs, produce     *hdrhistogram.Histogram
	gwCPU                   float64 // gateway CPU seconds in the window
	selfCPU                 float64 // this process (publisher + receivers), cores
	gwMetric                string
	otherBefore, machineAvg float64
}

func (r *dlLatencyResult) String() string {
	q := func(h *hdrhistogram.Histogram, p float64) string {
		return fmt.Sprintf("%.2f", float64(h.ValueAtQuantile(p))/1000)
	}
	return fmt.Sprintf("rate %.0f/s: published %d (%.0f/s achieved, %d errors), delivered in window %d; "+
		"latency ms (payload ns clock) p50 %s p90 %s p99 %s p99.9 %s max %s; (created_at_ms) p50 %s p99 %s; "+
		"produce ack ms p50 %s p99 %s; gateway CPU %.2f cores, test process (publisher+receivers) %.2f cores; machine busy %.2f cores (%.2f before); gateway metric: %s",
		r.rate, r.published, r.achieved, r.pubErrors, r.delivered,
		q(r.lat, 50), q(r.lat, 90), q(r.lat, 99), q(r.lat, 99.9), fmt.Sprintf("%.2f", float64(r.lat.Max())/1000),
		q(r.latMs, 50), q(r.latMs, 99), q(r.produce, 50), q(r.produce, 99),
		r.gwCPU, r.selfCPU, r.machineAvg, r.otherBefore, r.gwMetric)
}

// dlLatencyRun publishes user-targeted records (round-robin over n users) at rate, open loop,
// for warmup + duration; only records published in the window are measured.
func dlLatencyRun(ctx context.Context, t *testing.T, pub *push.Publisher, rec *dlRecorder, gwPid int, admin string, n int, rate float64, warmup, duration time.Duration) *dlLatencyResult {
	t.Helper()
	res := &dlLatencyResult{rate: rate, produce: hdrhistogram.New(1, 60_000_000, 3)}
	var pmu sync.Mutex
	var pubErrs atomic.Int64
	var inflight sync.WaitGroup
	var measuring atomic.Bool

	rec.measure.Store(false)
	start := time.Now()
	end := start.Add(warmup + duration)
	var k int64
	var cpu0, busy0, self0 int64
	var m0 map[string]float64
	var windowStart time.Time
	var publishedInWindow int64
	pushes0 := int64(0)
	for {
		now := time.Now()
		if now.After(end) || ctx.Err() != nil {
			break
		}
		if !measuring.Load() && now.Sub(start) >= warmup {
			rec.reset()
			rec.from.Store(now.UnixNano())
			cpu0, _ = CPUMicros(gwPid)
			self0, _ = CPUMicros(os.Getpid())
			busy0, _ = MachineBusyMicros()
			m0 = dlScrape(admin)
			windowStart = now
			pushes0 = rec.pushes.Load()
			measuring.Store(true)
			rec.measure.Store(true)
		}
		due := int64(now.Sub(start).Seconds() * rate)
		for ; k <= due; k++ {
			sent := time.Now()
			user := "bench-" + strconv.Itoa(int(k%int64(n)))
			if measuring.Load() {
				publishedInWindow++
			}
			inflight.Add(1)
			pub.PushAsync(push.Message{Target: push.User(user), Payload: dlPayload(sent, 64)}, func(_ string, err error) {
				defer inflight.Done()
				if err != nil {
					pubErrs.Add(1)
					return
				}
				pmu.Lock()
				_ = res.produce.RecordValue(max(time.Since(sent).Microseconds(), 1))
				pmu.Unlock()
			})
		}
		time.Sleep(time.Millisecond)
	}
	window := time.Since(windowStart)
	cpu1, _ := CPUMicros(gwPid)
	self1, _ := CPUMicros(os.Getpid())
	busy1, _ := MachineBusyMicros()
	inflight.Wait()
	// Wait for stragglers (bounded).
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && rec.pushes.Load()-pushes0 < publishedInWindow {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	rec.measure.Store(false)
	m1 := dlScrape(admin)

	res.published = publishedInWindow
	res.achieved = float64(publishedInWindow) / window.Seconds()
	res.pubErrors = pubErrs.Load()
	rec.mu.Lock()
	res.lat = hdrhistogram.Import(rec.hist.Export())
	res.latMs = hdrhistogram.Import(rec.histMs.Export())
	rec.mu.Unlock()
	res.delivered = res.lat.TotalCount()
	res.gwCPU = float64(cpu1-cpu0) / 1e6 / window.Seconds()
	res.machineAvg = float64(busy1-busy0) / 1e6 / window.Seconds()
	res.selfCPU = float64(self1-self0) / 1e6 / window.Seconds()
	res.gwMetric = dlMetricText(m0, m1)
	return res
}

// dlScrape reads the gateway's tcpgw_downlink_latency_seconds histogram: bucket bound -> count.
func dlScrape(admin string) map[string]float64 {
	out := map[string]float64{}
	cl := &http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get("http://" + admin + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var key string
		switch {
		case strings.HasPrefix(line, `tcpgw_downlink_latency_seconds_bucket{le="`):
			rest := strings.TrimPrefix(line, `tcpgw_downlink_latency_seconds_bucket{le="`)
			le, _, _ := strings.Cut(rest, `"`)
			key = le
		case strings.HasPrefix(line, "tcpgw_downlink_latency_seconds_count"):
			key = "count"
		case strings.HasPrefix(line, "tcpgw_downlink_latency_seconds_sum"):
			key = "sum"
		case strings.HasPrefix(line, "tcpgw_downlink_deliveries_total"):
			key = "deliveries:" + strings.Fields(line)[0]
		default:
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			out[key] += v
		}
	}
	return out
}

// dlMetricText summarises the difference of two scrapes: records, mean, and the share within
// 5, 10 and 20 ms (created_at -> queued, as the gateway sees it).
func dlMetricText(m0, m1 map[string]float64) string {
	n := m1["count"] - m0["count"]
	if n <= 0 {
		return "n/a"
	}
	share := func(le string) string {
		return fmt.Sprintf("%.1f%%", 100*(m1[le]-m0[le])/n)
	}
	return fmt.Sprintf("%.0f records, mean %.2f ms, ≤5ms %s, ≤10ms %s, ≤20ms %s, ≤50ms %s",
		n, 1000*(m1["sum"]-m0["sum"])/n, share("0.005"), share("0.01"), share("0.02"), share("0.05"))
}

type dlBroadcastResult struct {
	conns, got             int
	toFirst, toLast, span  time.Duration
	publishAck             time.Duration
	gwCPU                  float64 // seconds
	selfCPU, machineCPU    float64 // seconds: receivers (this process), whole machine
	gwUser, gwSys          float64 // seconds: the gateway's CPU split
	perSec, perCPUSec      float64
	other                  float64
	latP50, latP99, latMax float64 // ms, per delivery
}

func (r *dlBroadcastResult) String() string {
	return fmt.Sprintf("%d/%d delivered; created→first %.1f ms, created→last %.1f ms (first→last %.1f ms); "+
		"publish ack %.1f ms; per-delivery p50 %.1f p99 %.1f max %.1f ms; %.0f deliveries/s (first→last); "+
		"gateway CPU %.3f s (user %.3f, sys %.3f) → %.0f deliveries per CPU-second; receivers CPU %.3f s, machine %.3f s; machine busy before %.2f cores",
		r.got, r.conns, ms(r.toFirst), ms(r.toLast), ms(r.span), ms(r.publishAck), r.latP50, r.latP99, r.latMax,
		r.perSec, r.gwCPU, r.gwUser, r.gwSys, r.perCPUSec, r.selfCPU, r.machineCPU, r.other)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// dlBroadcast publishes one record to all and waits (at most 15 s) until n receivers have it.
func dlBroadcast(ctx context.Context, t *testing.T, pub *push.Publisher, rec *dlRecorder, gwPid, n int) *dlBroadcastResult {
	t.Helper()
	rec.reset()
	rec.measure.Store(true)
	defer rec.measure.Store(false)
	p0 := rec.pushes.Load()
	cpu0, _ := CPUMicros(gwPid)
	u0, s0 := dlUserSys(gwPid)
	self0, _ := CPUMicros(os.Getpid())
	busy0, _ := MachineBusyMicros()
	sent := time.Now()
	rec.from.Store(sent.UnixNano())
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := pub.Push(pctx, push.Message{Target: push.All(), Payload: dlPayload(sent, 64)})
	cancel()
	ack := time.Since(sent)
	if err != nil {
		t.Fatalf("broadcast push: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for rec.pushes.Load()-p0 < int64(n) && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	cpu1, _ := CPUMicros(gwPid)
	u1, s1 := dlUserSys(gwPid)
	self1, _ := CPUMicros(os.Getpid())
	busy1, _ := MachineBusyMicros()
	got := int(rec.pushes.Load() - p0)
	first, last := rec.firstNs.Load(), rec.lastNs.Load()
	r := &dlBroadcastResult{conns: n, got: got, publishAck: ack, gwCPU: float64(cpu1-cpu0) / 1e6,
		selfCPU: float64(self1-self0) / 1e6, machineCPU: float64(busy1-busy0) / 1e6,
		gwUser: float64(u1-u0) / 1e6, gwSys: float64(s1-s0) / 1e6}
	if got > 0 {
		r.toFirst = time.Duration(first - sent.UnixNano())
		r.toLast = time.Duration(last - sent.UnixNano())
		r.span = time.Duration(last - first)
		if r.span > 0 {
			r.perSec = float64(got) / r.span.Seconds()
		}
	}
	if r.gwCPU > 0 {
		r.perCPUSec = float64(got) / r.gwCPU
	}
	rec.mu.Lock()
	r.latP50 = float64(rec.hist.ValueAtQuantile(50)) / 1000
	r.latP99 = float64(rec.hist.ValueAtQuantile(99)) / 1000
	r.latMax = float64(rec.hist.Max()) / 1000
	rec.mu.Unlock()
	if got < n {
		t.Errorf("broadcast reached %d of %d receivers within 15 s", got, n)
	}
	return r
}
