package drain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/control"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/traffic"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// Issue 16, rebalance: a scale-out. Clients connect to two gateways; a third, empty one joins
// the LB; `gateway rebalance -count N -rate R` on the first moves N of its sessions away while
// records flow and clients talk. Every moved client resumes COMPLETE through the LB (mostly
// on the new gateway, which least-connections favours), the others are undisturbed, nothing
// is lost or duplicated, the GOAWAYs keep the rate, the first gateway stays ready throughout,
// and bad requests are refused with their typed reasons (exit status 3).
func TestRebalance(t *testing.T) {
	sc := currentScale(t)
	clients := sc.clients / 2 // two gateways hold them
	c := newCluster(t, sc, 3)
	victim, fresh := c.gws[0], c.gws[2]
	c.lb.Remove(fresh.ClientAddr) // not there yet: the scale-out adds it
	wait.For(t, 10*time.Second, "the LB stops sending to the third gateway", func() bool {
		return !c.lb.Stats().Backends[fresh.ClientAddr].Eligible
	})
	f := c.connectFleet(clients)
	perGateway := c.waitSessions(clients)
	p := c.startProducer(clients)
	on := f.On(victim.ID)
	count, rate := len(on)/2, 10
	if count < 4 {
		t.Fatalf("%d clients on %s (%v): need at least 8", len(on), victim.ID, perGateway)
	}
	tk := traffic.StartTalkers(t, pickTalkers(f, nil, sc.talkers), 100*time.Millisecond)
	run(sc.warmup)

	c.lb.Add(fresh.ClientAddr) // the scale-out: a new, empty pod
	t0 := time.Now()
	res := rebalance(t, victim, "-count", fmt.Sprint(count), "-rate", fmt.Sprint(rate))
	var st control.RebalanceStatus
	if res.code != 0 || json.Unmarshal([]byte(res.out), &st) != nil {
		t.Fatalf("gateway rebalance exited %d: %s %s", res.code, res.out, res.errOut)
	}
	window := time.Duration(count) * time.Second / time.Duration(rate)
	if st.Count != count || st.Rate != rate || st.WindowMs != window.Milliseconds() {
		t.Errorf("rebalance answered %+v, want count %d, rate %d, window %s", st, count, rate, window)
	}
	// One at a time: a second request while it runs is refused, not queued or merged.
	if r := rebalance(t, victim, "-count", "1", "-rate", "1"); r.code != 3 || !strings.Contains(r.errOut, "(running)") {
		t.Errorf("second rebalance while one runs: exit %d %q, want 3 and running", r.code, r.errOut)
	}
	// The pod stays ready while it sheds.
	readyDuring, notReady := 0, []string{}
	wait.For(t, window+10*time.Second, "the rebalance ends", func() bool {
		switch s, err := victim.Readyz(); {
		case err == nil && s == "":
			readyDuring++
		case err == nil:
			notReady = append(notReady, s)
		}
		v, err := victim.Metric("tcpgw_rebalancing")
		return err == nil && v == 0
	})
	shedAt := time.Since(t0)

	run(sc.after)
	p.Halt()
	tk.Halt()
	doneAt, complete := traffic.WaitComplete(f, p, sc.settle)
	ps := p.Stats()

	// The moved clients are those that left on a REBALANCE GOAWAY.
	var moved []*traffic.App
	var goAways []time.Time
	for _, ac := range f.Clients {
		_, discs := ac.Events()
		for _, d := range discs {
			if d.GoAway != nil && d.GoAway.Reason == pb.GoAway_REASON_REBALANCE {
				moved = append(moved, ac)
				goAways = append(goAways, d.At)
				break
			}
		}
	}
	slices.SortFunc(goAways, func(a, b time.Time) int { return a.Compare(b) })
	maxPerSecond := 0
	for i, j := 0, 0; i < len(goAways); i++ {
		for goAways[i].Sub(goAways[j]) >= time.Second {
			j++
		}
		maxPerSecond = max(maxPerSecond, i-j+1)
	}
	landed := map[string]int{}

	t.Run("N sessions of the pod move, paced, and come back COMPLETE", func(t *testing.T) {
		if len(moved) != count {
			t.Fatalf("%d clients got GOAWAY REBALANCE, want %d", len(moved), count)
		}
		for _, ac := range moved {
			conns, discs := ac.Events()
			if !slices.Contains(on, ac) {
				t.Errorf("client %d was not on %s: %s", ac.Index, victim.ID, traffic.History(conns, discs, t0))
			}
			back := false
			for _, cv := range conns {
				if cv.At.Before(t0) {
					continue
				}
				if !cv.Resumed || cv.Status != pb.ResumeResult_STATUS_COMPLETE {
					t.Errorf("client %d resumed=%v %s on %s", ac.Index, cv.Resumed, cv.Status, cv.Server)
				}
				if !back {
					back = true
					landed[cv.Server]++
				}
			}
			if !back {
				t.Errorf("client %d never came back: %s", ac.Index, traffic.History(conns, discs, t0))
			}
		}
		// Paced: spread over most of the window; at most twice the rate in any one second
		// (the 50 ms batches fall unevenly into a second), not all at once.
		if span := goAways[len(goAways)-1].Sub(goAways[0]); span < window/2 {
			t.Errorf("the GOAWAYs spanned %s, want most of the %s window", span, window)
		}
		if maxPerSecond > 2*rate {
			t.Errorf("%d GOAWAYs within one second, above 2 × the rate %d", maxPerSecond, rate)
		}
		if shedAt > window+5*time.Second {
			t.Errorf("the rebalance took %s, want about the window %s", shedAt, window)
		}
		if landed[fresh.ID] == 0 {
			t.Errorf("no moved client landed on the new gateway %s: %v", fresh.ID, landed)
		}
		traffic.CheckUndisturbed(t, f, moved, t0)
		tk.Check(t, t0)
	})

	t.Run("the pod stays ready and keeps accepting", func(t *testing.T) {
		if readyDuring == 0 || len(notReady) > 0 {
			t.Errorf("/readyz during the rebalance: ready %d times, not ready %v", readyDuring, notReady)
		}
		if s, err := victim.Readyz(); err != nil || s != "" {
			t.Errorf("/readyz after the rebalance: %q %v", s, err)
		}
		if v, _ := victim.Metric("tcpgw_rebalance_goaways_total"); int(v) != count {
			t.Errorf("tcpgw_rebalance_goaways_total %v, want %d", v, count)
		}
	})

	deliveries := checkEveryRecord(t, f, p, ps, complete, sc.settle, t0)

	t.Run("bad requests are refused with their reason", func(t *testing.T) {
		for _, tc := range []struct {
			args   []string
			reason string
		}{
			{[]string{"-count", "0", "-rate", "5"}, "bad_count"},
			{[]string{"-count", "100000", "-rate", "5"}, "bad_count"},
			{[]string{"-count", "1", "-rate", "0"}, "bad_rate"},
			{[]string{"-count", "1", "-rate", "5000"}, "bad_rate"},
		} {
			if r := rebalance(t, victim, tc.args...); r.code != 3 || !strings.Contains(r.errOut, "("+tc.reason+")") {
				t.Errorf("rebalance %v: exit %d %q, want 3 and %s", tc.args, r.code, r.errOut, tc.reason)
			}
		}
		ms, err := victim.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		for result, want := range map[string]float64{"started": 1, "running": 1, "bad_count": 2, "bad_rate": 2, "draining": 0} {
			if got := ms.Value("tcpgw_rebalance_requests_total", "result", result); got != want {
				t.Errorf("tcpgw_rebalance_requests_total{result=%q} = %v, want %v", result, got, want)
			}
		}
	})

	t.Run("not on the admin port", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req, _ := http.NewRequest(method, "http://"+victim.AdminAddr+control.RebalancePath+"?count=1&rate=1", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("admin port %s %s: %s, want 404", method, control.RebalancePath, resp.Status)
			}
		}
		if v, _ := victim.Metric("tcpgw_rebalance_requests_total", "result", "started"); v != 1 {
			t.Errorf("a request on the admin port started a rebalance (started = %v)", v)
		}
	})

	t.Logf("FIGURES rebalance %s: %d clients %v, %d of %d on %s moved at %d/s (window %s); the run took %.2fs; "+
		"max %d GOAWAYs in one second; landed %v; producer %d accepted at %.0f/s (%d failed), %d deliveries to apps; all records %.2fs after t0; echo responses %s",
		sc.name, clients, perGateway, count, len(on), victim.ID, rate, window, shedAt.Seconds(), maxPerSecond, landed,
		ps.Accepted, ps.Rate, ps.Failed, deliveries, doneAt.Sub(t0).Seconds(), tk.Summary())
}

type cmdResult struct {
	code        int
	out, errOut string
}

// rebalance runs `gateway rebalance` against g's control socket, as kubectl exec would.
func rebalance(t *testing.T, g *gatewayProc, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.Bin, append([]string{"rebalance", "-socket", g.Config.Listen.Control}, args...)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := cmdResult{out: strings.TrimSpace(out.String()), errOut: strings.TrimSpace(errOut.String())}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("gateway rebalance: %v", err)
	}
	return r
}
