//go:build bench

package bench

// TestManyGateways holds many idle connections on several gateway processes at once, each near
// this machine's 20000-file limit, with pushes flowing (docs/benchmarks.md, "Toward a
// million"):
//
//	go test -count=1 -tags bench -run TestManyGateways -v -timeout 30m ./test/bench/
//
// TCPGW_MANY_GATEWAYS (3) gateway processes with the harness's configuration and one Kafka
// downlink topic (every gateway consumes every partition and delivers to the users it holds);
// each gets TCPGW_MANY_CONNS (19000) receivers in a process of their own (receivers.go), from
// 3 source addresses of their own, users bench-<g×conns>… so that every user is on one
// gateway. Once all are connected and have been idle 3 s: each gateway's RSS and live
// heap+stacks per connection. Then TCPGW_MANY_RATE (500) records/s, each to one user taken in
// turn over all gateways' users, for TCPGW_MANY_WARMUP (5s, not measured) then
// TCPGW_MANY_DURATION (30s), open loop; then up to 30 s for the last ones. Reported: per gateway its CPU over the push window, RSS per connection after
// it, and the pushes its receivers got and their latency (payload send time → receipt); in
// all, records sent, pushes received, lost (sent − received), connections lost, and the load
// average. TCPGW_MANY_OUT writes the summary there.

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

type manyGateway struct {
	srv               *floorServer
	rec               *Receivers
	rss0, heap0       int64 // KiB at start
	rssIdle, heapIdle int64 // KiB once all were connected and idle
	rssPush           int64 // KiB after the push window
	cpu0, cpu1        int64 // µs, around the push window
	stats             ReceiverStats
}

func TestManyGateways(t *testing.T) {
	setNice(t)
	gateways := envInt(t, "TCPGW_MANY_GATEWAYS", 3)
	conns := envInt(t, "TCPGW_MANY_CONNS", 19000)
	rate := envInt(t, "TCPGW_MANY_RATE", 500)
	duration, err := time.ParseDuration(envOr(t, "TCPGW_MANY_DURATION", "30s"))
	warmup, err2 := time.ParseDuration(envOr(t, "TCPGW_MANY_WARMUP", "5s"))
	if err == nil {
		err = err2
	}
	if err != nil || gateways < 1 || conns < 1 || rate < 1 || duration <= 0 || warmup < 0 {
		t.Fatalf("TCPGW_MANY_*: want positive counts and a duration (%v)", err)
	}
	ctx, _, env := startEnv(t, 25*time.Minute)
	bootstrap := kafkatest.Bootstrap(t)
	topic := kafkatest.CreateTopic(t, bootstrap, 6)
	receipts := kafkatest.CreateTopic(t, bootstrap, 6)
	pub, err := push.New(ctx, push.Options{Brokers: []string{bootstrap}, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	load0 := loadAvg()

	gws := make([]*manyGateway, gateways)
	for g := range gws {
		srv, err := startFloorGateway(ctx, env, env.Bins.Gateway, "many", bootstrap, topic, receipts, pub, g+1)
		if err != nil {
			t.Fatalf("gateway %d: %v", g, err)
		}
		t.Cleanup(srv.p.Stop)
		gw := &manyGateway{srv: srv}
		gws[g] = gw
		time.Sleep(time.Second) // start-up garbage settles, as in Env.Idle
		if gw.rss0, err = RSSKiB(srv.p.Pid); err == nil {
			gw.heap0, err = LiveHeapKiB(ctx, srv.pprof)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Receivers connect one gateway after the other: on 2 cores, ramps in parallel would only
	// queue behind each other.
	for g, gw := range gws {
		var sources []string
		for i := range 3 {
			sources = append(sources, fmt.Sprintf("127.0.%d.%d", 60+g, 2+i))
		}
		start := time.Now()
		rec, err := startReceivers(ctx, receiversSpec{Addr: gw.srv.addr, SecretFile: env.SecretFile,
			Conns: conns, Sources: sources, From: g * conns, Latency: true})
		if err != nil {
			t.Fatalf("receivers of gateway %d: %v", g, err)
		}
		t.Cleanup(rec.Stop)
		gw.rec = rec
		t.Logf("gateway %d: %d receivers connected in %s", g, conns, time.Since(start).Round(time.Millisecond))
	}
	time.Sleep(3 * time.Second) // idle: heartbeats only
	for g, gw := range gws {
		if gw.rssIdle, err = RSSKiB(gw.srv.p.Pid); err == nil {
			gw.heapIdle, err = LiveHeapKiB(ctx, gw.srv.pprof)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gw.rec.Stats(ctx, true); err != nil {
			t.Fatal(err)
		}
		t.Logf("gateway %d idle: RSS %.2f KiB, live heap+stacks %.2f KiB per connection", g,
			float64(gw.rssIdle-gw.rss0)/float64(conns), float64(gw.heapIdle-gw.heap0)/float64(conns))
	}

	// Pushes: open loop, record k due at start + k/rate; the first TCPGW_MANY_WARMUP of them
	// are not measured (the receivers' histograms are reset and the CPU read after them).
	total := gateways * conns
	nWarm := int(float64(rate) * warmup.Seconds())
	n := nWarm + int(float64(rate)*duration.Seconds())
	var failed atomic.Int64
	var busy0 int64
	var windowStart time.Time
	start := time.Now()
	for k := range n {
		if d := time.Until(start.Add(time.Duration(k) * time.Second / time.Duration(rate))); d > 0 {
			time.Sleep(d)
		}
		if k == nWarm {
			for _, gw := range gws {
				if _, err := gw.rec.Stats(ctx, true); err != nil {
					t.Fatal(err)
				}
				gw.cpu0, _ = CPUMicros(gw.srv.p.Pid)
			}
			busy0, _ = MachineBusyMicros()
			windowStart = time.Now()
		}
		user := "bench-" + strconv.Itoa((k*7919)%total) // 7919 is prime: every user in turn, gateways interleaved
		pub.PushAsync(push.Message{Target: push.User(user), Payload: dlPayload(time.Now(), floorPayload)}, func(_ string, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	window := time.Since(windowStart)
	var got int64
	for _, gw := range gws {
		gw.cpu1, _ = CPUMicros(gw.srv.p.Pid)
	}
	busy1, _ := MachineBusyMicros()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = 0
		for _, gw := range gws {
			if gw.stats, err = gw.rec.Stats(ctx, false); err != nil {
				t.Fatal(err)
			}
			got += gw.stats.Pushes
		}
		if got >= int64(n)-failed.Load() || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // receipts have no aggregate event; poll the counts
	}
	for _, gw := range gws {
		gw.rssPush, _ = RSSKiB(gw.srv.p.Pid)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%d gateways × %d idle connections (%d in all), %d records/s to one user each: %s of warm-up, then %s measured (sent in %s)\n\n",
		gateways, conns, total, rate, warmup, duration, window.Round(time.Millisecond))
	b.WriteString("| gateway | idle RSS KiB/conn | idle live heap+stacks KiB/conn | RSS KiB/conn after pushes | CPU cores during pushes | CPU µs per push (measured window) | pushes received (all) | latency p50 / p99 / p99.9 / max ms | connections lost |\n|---|---:|---:|---:|---:|---:|---:|---|---:|\n")
	var lostConns int64
	var p99s []float64
	for g, gw := range gws {
		cpu := float64(gw.cpu1 - gw.cpu0)
		st := gw.stats
		lostConns += st.Lost
		p99s = append(p99s, float64(st.P99Us)/1000)
		fmt.Fprintf(&b, "| %d | %.2f | %.2f | %.2f | %.2f | %.1f | %d | %.1f / %.1f / %.1f / %.1f | %d |\n", g,
			float64(gw.rssIdle-gw.rss0)/float64(conns), float64(gw.heapIdle-gw.heap0)/float64(conns),
			float64(gw.rssPush-gw.rss0)/float64(conns), cpu/float64(window.Microseconds()),
			cpu/(float64(rate)*window.Seconds()/float64(gateways)), st.Pushes,
			float64(st.P50Us)/1000, float64(st.P99Us)/1000, float64(st.P999Us)/1000, float64(st.MaxUs)/1000, st.Lost)
	}
	fmt.Fprintf(&b, "\nrecords sent %d (publish errors %d), pushes received %d, lost %d, connections lost %d; worst gateway p99 %.1f ms; machine %.2f busy cores during the window; load average %s before, %s after\n",
		n, failed.Load(), got, int64(n)-failed.Load()-got, lostConns, slices.Max(p99s),
		float64(busy1-busy0)/float64(window.Microseconds()), load0, loadAvg())
	t.Logf("\n%s", b.String())
	if out := os.Getenv("TCPGW_MANY_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	if lostConns > 0 || got < int64(n)-failed.Load() {
		t.Errorf("lost: %d pushes, %d connections", int64(n)-failed.Load()-got, lostConns)
	}
}
