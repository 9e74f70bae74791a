package drain

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/traffic"
)

// maxReconnectJitter is the largest reconnect delay a GOAWAY carries (gateway/server:
// min(1s, spreadWindow/4)); a client reconnects at most that long after its GOAWAY.
const maxReconnectJitter = time.Second

// reconnectSlack covers what comes after a GOAWAY's delay on a loaded 2-core box: the LB's
// dial, the handshake and the resume replay. It bounds, it does not synchronise.
const reconnectSlack = 2 * time.Second

// run lets the producer and the clients work for d: the scenario's pacing, not a wait for
// an event.
func run(d time.Duration) { time.Sleep(d) }

// Item 1 and 2 of the issue: three gateways behind the LB, a steady downlink, one gateway
// drained through the preStop path (the LB deregisters it, `gateway drain -wait`, then
// SIGTERM) with requests in flight across the whole drain.
func TestPreStopDrain(t *testing.T) {
	sc := currentScale(t)
	c := newCluster(t, sc, 3)
	f := c.connectFleet(sc.clients)
	perGateway := c.waitSessions(sc.clients)
	p := c.startProducer(sc.clients)

	victim := c.gws[0]
	d := victim.Config.Drain
	moved := f.On(victim.ID)
	if len(moved) < 2 {
		t.Fatalf("%d clients on %s (sessions per gateway %v): need at least 2", len(moved), victim.ID, perGateway)
	}
	held := moved[:min(sc.held, len(moved)/2)]
	tk := traffic.StartTalkers(t, pickTalkers(f, held, sc.talkers), 100*time.Millisecond)
	run(sc.warmup)

	// Requests in flight on the drained gateway, held by the backend until every client of
	// that gateway was told to go away.
	type heldResult struct {
		ac      *traffic.App
		payload string
		resp    *pb.Response
		err     error
	}
	heldDone := make(chan heldResult, len(held))
	for _, ac := range held {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			payload := "held by " + ac.User
			resp, err := ac.Client().Request(ctx, "hold", "wait", []byte(payload))
			heldDone <- heldResult{ac, payload, resp, err}
		}()
	}
	if err := c.hold.waitEntered(len(held), 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// preStop: the LB deregisters the pod (readiness fails) while the kubelet calls the
	// hook, which answers when the drain is over.
	t0 := time.Now()
	c.lb.Remove(victim.ClientAddr)
	drained := make(chan gwproc.DrainResult, 1)
	go func() { drained <- victim.PreStop() }()

	goAwayBound := d.DeregistrationDelay.Duration + d.SpreadWindow.Duration + reconnectSlack
	timeout := time.After(goAwayBound)
	goAways := 0
wait:
	for _, ac := range moved {
		select {
		case <-ac.GoAwayed():
			goAways++
		case <-timeout:
			break wait
		}
	}
	c.hold.releaseAll()
	released := time.Since(t0)

	var dr gwproc.DrainResult
	select {
	case dr = <-drained:
	case <-time.After(d.TerminationGracePeriod()):
		t.Fatalf("gateway drain -wait did not return within terminationGracePeriod %s", d.TerminationGracePeriod())
	}
	drainTook := dr.At.Sub(t0)
	// Then the kubelet sends SIGTERM (the process may already be on its way out).
	if err := victim.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	exitCode, exitErr := victim.WaitExit(time.Until(t0.Add(d.TerminationGracePeriod())))

	heldResults := make([]heldResult, 0, len(held))
	heldTimeout := time.After(10 * time.Second)
	for range held {
		select {
		case r := <-heldDone:
			heldResults = append(heldResults, r)
		case <-heldTimeout:
		}
	}

	run(sc.after)
	p.Halt()
	tk.Halt()
	stopped := time.Now()
	doneAt, complete := traffic.WaitComplete(f, p, sc.settle)
	ps := p.Stats()

	t.Run("process exits 0 before its deadline", func(t *testing.T) {
		if !dr.OK() {
			t.Errorf("gateway drain -wait exited %d saying %q (err %v), want 0 and drained", dr.ExitCode, dr.Output, dr.Err)
		}
		if drainTook > d.HardDeadline.Duration {
			t.Errorf("the drain took %s, past hardDeadline %s", drainTook, d.HardDeadline)
		}
		if exitErr != nil {
			t.Fatalf("%v\n%s", exitErr, victim.Log.Tail(20))
		}
		if exitCode != 0 {
			t.Errorf("exit status %d (%v), want 0\n%s", exitCode, victim.WaitErr, victim.Log.Tail(30))
		}
		if took := victim.ExitedAt.Sub(t0); took > d.TerminationGracePeriod() {
			t.Errorf("exited %s after preStop began, past terminationGracePeriod %s", took, d.TerminationGracePeriod())
		}
		phases := victim.drainPhases()
		names := make([]string, 0, len(phases))
		for _, ph := range phases {
			names = append(names, ph.phase)
		}
		want := []string{"not_ready", "deregistered", "goaway", "flushed", "closed", "finished"}
		if !slices.Equal(names, want) {
			t.Errorf("drain phases logged %v, want %v", names, want)
			return
		}
		// The flush phase ended before its timeout: every held request was answered and
		// every queue written, nothing was cut.
		if flush := phases[3].since - phases[2].since; flush >= d.FlushTimeout.Duration {
			t.Errorf("flush took %s: it hit flushTimeout %s", flush, d.FlushTimeout)
		}
	})

	t.Run("in-flight requests get their responses", func(t *testing.T) {
		if goAways != len(moved) {
			t.Errorf("only %d of %d clients of %s got a GOAWAY within %s", goAways, len(moved), victim.ID, goAwayBound)
		}
		if len(heldResults) != len(held) {
			t.Fatalf("%d of %d held requests returned", len(heldResults), len(held))
		}
		for _, r := range heldResults {
			switch {
			case r.err != nil:
				t.Errorf("client %d: held request failed: %v", r.ac.Index, r.err)
			case r.resp.GetCode() != pb.ErrorCode_ERROR_CODE_OK || r.resp.GetStatus() != 200:
				t.Errorf("client %d: held request answered %s %d %q", r.ac.Index, r.resp.GetCode(), r.resp.GetStatus(), r.resp.GetMessage())
			case string(r.resp.GetPayload()) != "released "+r.payload:
				t.Errorf("client %d: held request answered %q", r.ac.Index, r.resp.GetPayload())
			}
		}
		if n := c.hold.count.Load(); n != int64(len(held)) {
			t.Errorf("the backend saw %d held requests, want %d (none retried)", n, len(held))
		}
		tk.Check(t, t0)
	})

	deliveries := checkEveryRecord(t, f, p, ps, complete, sc.settle, t0)

	mv := traffic.CheckMoves(moved, victim.ID, t0)
	reconnectBound := d.DeregistrationDelay.Duration + d.SpreadWindow.Duration + maxReconnectJitter + reconnectSlack
	// The bound is 2 × clients / window per second. Counts are integers, so the
	// bound is rounded down and one more is allowed for where the one-second interval cuts
	// the paced batches.
	rateLimit := 2 * float64(len(moved)) / d.SpreadWindow.Seconds()
	allowed := int(math.Floor(rateLimit)) + 1
	t.Run("clients reconnect within the window, without a storm", func(t *testing.T) {
		if len(mv.NotBack) > 0 {
			t.Errorf("%d clients of %s never came back elsewhere:\n  %s", len(mv.NotBack), victim.ID, strings.Join(mv.NotBack[:min(5, len(mv.NotBack))], "\n  "))
		}
		if mv.Last() > reconnectBound {
			t.Errorf("the last client came back %s after the drain began, past %s (deregistrationDelay + spreadWindow + max jitter + %s)", mv.Last(), reconnectBound, reconnectSlack)
		}
		if mv.MaxPerSecond > allowed {
			t.Errorf("%d reconnects within one second, above 2 × %d clients / %s = %.1f/s", mv.MaxPerSecond, len(moved), d.SpreadWindow, rateLimit)
		}
		if len(mv.ResumeBad) > 0 {
			t.Errorf("%d handshakes after the drain did not resume COMPLETE, e.g. %s", len(mv.ResumeBad), mv.ResumeBad[0])
		}
		for _, ac := range moved {
			_, discs := ac.Events()
			if len(discs) == 0 || discs[0].GoAway == nil || discs[0].GoAway.Reason != pb.GoAway_REASON_DRAINING {
				conns, _ := ac.Events()
				t.Errorf("client %d did not leave %s on a DRAINING GOAWAY: %s", ac.Index, victim.ID, traffic.History(conns, discs, t0))
				break
			}
		}
		traffic.CheckUndisturbed(t, f, moved, t0)
	})

	phases := victim.drainPhases()
	var phaseText []string
	for _, ph := range phases {
		phaseText = append(phaseText, fmt.Sprintf("%s@%.2fs", ph.phase, ph.since.Seconds()))
	}
	codes := tk.Summary()
	t.Logf("FIGURES drain %s: %d clients %v, %d moved from %s; producer %d accepted of %d at %.0f/s (%d failed, %d broadcasts, backlog %.2fs), %d deliveries to apps; "+
		"held requests released at t0+%.2fs; /drain answered at t0+%.2fs, exit 0 at t0+%.2fs (grace %s); phases %s; "+
		"reconnects p50 %.2fs p99 %.2fs max %.2fs (bound %s); max %d reconnects/s (limit %.1f, allowed %d); "+
		"all records in %.2fs after the producer stopped; echo responses %s",
		sc.name, sc.clients, perGateway, len(moved), victim.ID, ps.Accepted, ps.Scheduled, ps.Rate, ps.Failed, ps.Broadcasts, ps.Backlog.Seconds(), deliveries,
		released.Seconds(), drainTook.Seconds(), victim.ExitedAt.Sub(t0).Seconds(), d.TerminationGracePeriod(), strings.Join(phaseText, " "),
		mv.Percentile(0.5).Seconds(), mv.Percentile(0.99).Seconds(), mv.Last().Seconds(), reconnectBound, mv.MaxPerSecond, rateLimit, allowed,
		doneAt.Sub(stopped).Seconds(), codes)
}

// pickTalkers spreads n talkers over the fleet (so about a third are on each gateway),
// leaving out the clients with held requests.
func pickTalkers(f *traffic.Fleet, skip []*traffic.App, n int) []*traffic.App {
	var out []*traffic.App
	step := max(len(f.Clients)/max(n, 1), 1)
	for i := 1; i < len(f.Clients) && len(out) < n; i += step {
		if ac := f.Clients[i]; !slices.Contains(skip, ac) {
			out = append(out, ac)
		}
	}
	return out
}

// Item 3 of the issue: a gateway is SIGKILLed (no drain). Its clients reconnect through the
// LB and every record Kafka accepted for them is replayed by the other gateways' windows.
func TestSIGKILL(t *testing.T) {
	sc := currentScale(t)
	c := newCluster(t, sc, 3)
	f := c.connectFleet(sc.clients)
	perGateway := c.waitSessions(sc.clients)
	p := c.startProducer(sc.clients)
	victim := c.gws[0]
	moved := f.On(victim.ID)
	run(sc.warmup)

	t0 := time.Now()
	if err := victim.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.lb.Remove(victim.ClientAddr)
	if _, err := victim.WaitExit(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Every client of the killed gateway is back elsewhere.
	back := func() bool {
		for _, ac := range moved {
			if ac.Server() == victim.ID {
				return false
			}
		}
		return true
	}
	allBack := f.WaitUntil(sc.killRecovery, back)
	backAt := time.Since(t0)
	// ... and has every record Kafka accepted before the kill (replayed by its new gateway).
	recovered := f.WaitUntil(max(time.Until(t0.Add(sc.killRecovery)), 0), func() bool {
		for _, ac := range moved {
			if n, _ := ac.Missing(p, t0, 0, t0); n > 0 {
				return false
			}
		}
		return true
	})
	recoveredAt := time.Since(t0)

	run(time.Until(t0.Add(sc.after)))
	p.Halt()
	stopped := time.Now()
	doneAt, complete := traffic.WaitComplete(f, p, sc.settle)
	ps := p.Stats()

	t.Run("the process died of SIGKILL", func(t *testing.T) {
		if ws, ok := victim.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("process state %v, want killed by SIGKILL", victim.Cmd.ProcessState)
		}
	})
	mv := traffic.CheckMoves(moved, victim.ID, t0)
	t.Run("clients come back on the other gateways", func(t *testing.T) {
		if !recovered {
			t.Errorf("the clients of %s had not recovered the records accepted before the kill within %s", victim.ID, sc.killRecovery)
		}
		if !allBack || len(mv.NotBack) > 0 {
			t.Errorf("%d clients of %s not back within %s:\n  %s", len(mv.NotBack), victim.ID, sc.killRecovery, strings.Join(mv.NotBack[:min(5, len(mv.NotBack))], "\n  "))
		}
		if len(mv.ResumeBad) > 0 {
			t.Errorf("%d handshakes after the kill did not resume COMPLETE, e.g. %s", len(mv.ResumeBad), mv.ResumeBad[0])
		}
		// The SDK spreads the first reconnect after a loss over client.DefaultLostSpread: at
		// most twice the even rate in any one second, as for a drain's spread window.
		spreadLimit := 2 * float64(len(moved)) / client.DefaultLostSpread.Seconds()
		if float64(mv.MaxPerSecond) > max(spreadLimit, 10) {
			t.Errorf("%d reconnects within one second after the kill, above 2 × %d clients / %s = %.1f/s",
				mv.MaxPerSecond, len(moved), client.DefaultLostSpread, spreadLimit)
		}
		traffic.CheckUndisturbed(t, f, moved, t0)
	})
	deliveries := checkEveryRecord(t, f, p, ps, complete, sc.settle, t0)
	t.Logf("FIGURES kill %s: %d clients %v, %d on %s when killed; producer %d accepted of %d at %.0f/s (%d failed, backlog %.2fs), %d deliveries to apps; "+
		"all back %.2fs after the kill (p50 %.2fs, max %.2fs, max %d reconnects/s), with every record accepted before the kill %.2fs after it; "+
		"all records %.2fs after the kill (producer stopped at %.2fs)",
		sc.name, sc.clients, perGateway, len(moved), victim.ID, ps.Accepted, ps.Scheduled, ps.Rate, ps.Failed, ps.Backlog.Seconds(), deliveries,
		backAt.Seconds(), mv.Percentile(0.5).Seconds(), mv.Last().Seconds(), mv.MaxPerSecond, recoveredAt.Seconds(), doneAt.Sub(t0).Seconds(), stopped.Sub(t0).Seconds())
}
