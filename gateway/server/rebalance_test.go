package server_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/server"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// A rebalance tells the oldest sessions, and only them, to go away (GOAWAY REBALANCE with a
// resume token), paced at the rate asked; the pod stays ready and keeps accepting; a moved
// client that keeps its connection is closed after drain.flushTimeout; a second request while
// one runs and bad input are refused with their typed reasons.
func TestRebalanceMovesOldestSessionsPaced(t *testing.T) {
	h := start(t, nil, func(c *config.Config) { c.Drain.FlushTimeout = dur(500 * time.Millisecond) })
	const n, count, rate = 12, 8, 10 // 8 GOAWAYs at 10/s: 0.8 s
	conns := make([]*raw, n)
	for i := range conns {
		conns[i] = h.raw()
		conns[i].handshake(h.token("u"))
	}
	eventually(t, "every session registered", func() bool { return h.srv.Sessions().Len() == n })

	for _, tc := range []struct {
		count, rate int
		want        server.RebalanceRefusal
	}{{0, 1, server.RebalanceBadCount}, {n + 1, 1, server.RebalanceBadCount}, {1, 0, server.RebalanceBadRate}, {1, server.MaxRebalanceRate + 1, server.RebalanceBadRate}} {
		var re *server.RebalanceError
		if _, err := h.srv.Rebalance(tc.count, tc.rate); !errors.As(err, &re) || re.Reason != tc.want {
			t.Errorf("Rebalance(%d, %d) = %v, want %s", tc.count, tc.rate, err, tc.want)
		}
	}

	started := time.Now()
	run, err := h.srv.Rebalance(count, rate)
	if err != nil {
		t.Fatal(err)
	}
	if run.Window != 800*time.Millisecond || run.Sessions != n {
		t.Errorf("run %+v: want a window of 0.8s over %d sessions", run, n)
	}
	var re *server.RebalanceError
	if _, err := h.srv.Rebalance(1, 1); !errors.As(err, &re) || re.Reason != server.RebalanceRunning {
		t.Errorf("a second rebalance while one runs: %v, want %s", err, server.RebalanceRunning)
	}
	if counter(h.m.Rebalancing) != 1 {
		t.Error("tcpgw_rebalancing is not 1 while it runs")
	}
	// Still accepting, and ready: a new session during the rebalance works.
	fresh := h.raw()
	fresh.handshake(h.token("u"))
	if h.srv.Draining() {
		t.Error("a rebalance made the pod not ready")
	}

	// The 8 oldest get the GOAWAY; all but the first close as the SDK does, the first keeps
	// its connection open and is closed by the gateway after the flush timeout.
	arrivals := make([]time.Time, count)
	var wg sync.WaitGroup
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := conns[i]
			_ = r.nc.SetReadDeadline(time.Now().Add(wait))
			f, _, err := readRaw(r)
			if err != nil {
				t.Errorf("session %d: %v", i, err)
				return
			}
			g := f.GetGoaway()
			if g == nil || g.Reason != pb.GoAway_REASON_REBALANCE || g.ResumeToken == "" || g.ReconnectDelayMs > 200 {
				t.Errorf("session %d got %v, want GOAWAY REBALANCE with a token and a delay ≤ 0.2s (window/4)", i, f)
			}
			arrivals[i] = time.Now()
			if i > 0 {
				r.nc.Close()
				return
			}
			// A request after the GOAWAY is not forwarded; then the gateway closes.
			r.send(&pb.Frame{Seq: 9, Body: &pb.Frame_Request{Request: &pb.Request{Service: "echo", Method: "x"}}})
			if f := r.read(); f.Seq != 9 || f.GetResponse().GetCode() != pb.ErrorCode_ERROR_CODE_DRAINING {
				t.Errorf("request after GOAWAY answered %v, want DRAINING", f)
			}
			r.expectClosed()
			if since := time.Since(arrivals[0]); since < 400*time.Millisecond {
				t.Errorf("closed %v after the GOAWAY, before the flush timeout", since)
			}
		}()
	}
	wg.Wait()
	select {
	case <-run.Done():
	case <-time.After(wait):
		t.Fatal("rebalance did not end")
	}
	if run.Sent() != count || counter(h.m.RebalanceGoAways) != count || counter(h.m.Rebalancing) != 0 {
		t.Errorf("sent %d, tcpgw_rebalance_goaways_total %v, tcpgw_rebalancing %v; want %d, %d, 0",
			run.Sent(), counter(h.m.RebalanceGoAways), counter(h.m.Rebalancing), count, count)
	}
	first, last := arrivals[0], arrivals[0]
	for _, a := range arrivals {
		first, last = minTime(first, a), maxTime(last, a)
	}
	// Paced: spread over most of the window, not all at once, and not much longer.
	if span := last.Sub(first); span < run.Window/2 || last.Sub(started) > 5*run.Window {
		t.Errorf("GOAWAYs spread over %v, the last %v after the start; want most of the %v window", span, last.Sub(started), run.Window)
	}
	eventually(t, "the kept connection closed with reason rebalance", func() bool {
		return counter(h.m.Closes.WithLabelValues("rebalance")) == 1
	})
	// The youngest sessions stay: no GOAWAY, they still answer.
	for i := count; i < n; i++ {
		conns[i].send(&pb.Frame{Seq: 1, Body: &pb.Frame_Ping{Ping: &pb.Ping{}}})
		if f := conns[i].read(); f.GetPong() == nil {
			t.Errorf("session %d (not chosen) got %v, want PONG", i, f)
		}
	}
	if got := counter(h.m.RebalanceRequests.WithLabelValues("started")); got != 1 {
		t.Errorf("requests started = %v, want 1", got)
	}
	if got := counter(h.m.RebalanceRequests.WithLabelValues("bad_count")); got != 2 {
		t.Errorf("requests bad_count = %v, want 2", got)
	}
}

// A drain stops a running rebalance and moves everyone itself (DRAINING); a rebalance asked
// during a drain is refused.
func TestDrainStopsAndRefusesRebalance(t *testing.T) {
	h := start(t, nil, nil)
	const n = 20
	conns := make([]*raw, n)
	for i := range conns {
		conns[i] = h.raw()
		conns[i].handshake(h.token("u"))
	}
	eventually(t, "every session registered", func() bool { return h.srv.Sessions().Len() == n })
	run, err := h.srv.Rebalance(n, 1) // 20 s: the drain comes first
	if err != nil {
		t.Fatal(err)
	}
	if f := conns[0].read(); f.GetGoaway().GetReason() != pb.GoAway_REASON_REBALANCE {
		t.Fatalf("oldest session got %v, want GOAWAY REBALANCE", f)
	}
	d := config.Drain{SpreadWindow: dur(200 * time.Millisecond), FlushTimeout: dur(time.Second), HardDeadline: dur(wait)}
	drained := make(chan struct{})
	go func() { h.srv.Drain(context.Background(), d, nil); close(drained) }()
	select {
	case <-run.Done():
	case <-time.After(wait):
		t.Fatal("the drain did not stop the rebalance")
	}
	var re *server.RebalanceError
	if _, err := h.srv.Rebalance(1, 1); !errors.As(err, &re) || re.Reason != server.RebalanceDraining {
		t.Errorf("rebalance during a drain: %v, want %s", err, server.RebalanceDraining)
	}
	// Each of the others gets exactly one GOAWAY, DRAINING.
	for i := run.Sent(); i < n; i++ {
		if f := conns[i].read(); f.GetGoaway().GetReason() != pb.GoAway_REASON_DRAINING {
			t.Errorf("session %d got %v, want GOAWAY DRAINING", i, f)
		}
		conns[i].nc.Close()
	}
	conns[0].nc.Close()
	<-drained
	if run.Sent() >= n {
		t.Errorf("the rebalance sent %d GOAWAYs: the drain did not stop it", run.Sent())
	}
}
