package server_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/server"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

func dur(d time.Duration) config.Duration { return config.Duration{Duration: d} }

// The drain, phase by phase: readiness fails at once while connections are still accepted
// for the deregistration delay; then new connections are refused; GOAWAYs are spread over the
// window; requests in flight get their responses and new ones get DRAINING; then it ends.
func TestDrainPacesGoAwaysAndAnswersInFlightRequests(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	backend := http.NewServeMux()
	backend.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		_, _ = w.Write([]byte("finally"))
	})
	h := start(t, backend, nil)

	// Sessions that record when their GOAWAY arrives.
	const n = 40
	var mu sync.Mutex
	var arrivals []time.Time
	var wg sync.WaitGroup
	for range n {
		r := h.raw()
		r.handshake(h.token("idle"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = r.nc.SetReadDeadline(time.Now().Add(wait))
			for {
				f, _, err := readFrame(r)
				if err != nil {
					return
				}
				if f.GetGoaway() != nil {
					mu.Lock()
					arrivals = append(arrivals, time.Now())
					mu.Unlock()
					r.nc.Close() // as the SDK does when it has nothing pending
					return
				}
			}
		}()
	}
	// A session with a request in flight when the drain starts.
	busy := h.raw()
	busy.handshake(h.token("busy"))
	busy.send(&pb.Frame{Seq: 1, Body: &pb.Frame_Request{Request: &pb.Request{Service: "echo", Method: "block"}}})
	<-entered

	phases := make(chan server.DrainPhase, 8)
	d := config.Drain{
		DeregistrationDelay: dur(300 * time.Millisecond), SpreadWindow: dur(time.Second),
		FlushTimeout: dur(5 * time.Second), HardDeadline: dur(20 * time.Second),
	}
	started := time.Now()
	go h.srv.Drain(context.Background(), d, func(p server.DrainPhase) { phases <- p })

	if p := <-phases; p != server.PhaseNotReady || !h.srv.Draining() {
		t.Fatalf("first phase %s, draining %v", p, h.srv.Draining())
	}
	// Still accepting during the deregistration delay: the LB has not noticed yet.
	late := h.raw()
	late.handshake(h.token("late"))

	if p := <-phases; p != server.PhaseDeregistered {
		t.Fatalf("second phase %s", p)
	}
	if time.Since(started) < d.DeregistrationDelay.Duration {
		t.Errorf("refusing after %v, before the deregistration delay", time.Since(started))
	}
	refused := h.raw()
	if f := refused.read(); f.GetGoaway() == nil || f.GetGoaway().Reason != pb.GoAway_REASON_DRAINING {
		t.Fatalf("new connection after deregistration got %v, want GOAWAY DRAINING", f)
	}
	refused.expectClosed()

	// The busy session gets its GOAWAY, may not start new requests, but its request in
	// flight is answered before the connection closes.
	var gotGoAway, gotDraining bool
	for !gotGoAway {
		f := busy.read()
		if g := f.GetGoaway(); g != nil {
			gotGoAway = true
			if g.ResumeToken == "" || g.ReconnectDelayMs > 1000 {
				t.Errorf("GOAWAY %v: want a resume token and a jittered delay ≤ 1s", g)
			}
		}
	}
	busy.send(&pb.Frame{Seq: 2, Body: &pb.Frame_Request{Request: &pb.Request{Service: "echo", Method: "x"}}})
	if f := busy.read(); f.Seq == 2 && f.GetResponse().GetCode() == pb.ErrorCode_ERROR_CODE_DRAINING {
		gotDraining = true
	}
	if !gotDraining {
		t.Error("a request after GOAWAY was not answered DRAINING")
	}
	close(release)
	if f := busy.read(); f.Seq != 1 || string(f.GetResponse().GetPayload()) != "finally" {
		t.Fatalf("in-flight request answered with %v", f)
	}
	busy.nc.Close()
	late.nc.Close()

	for _, want := range []server.DrainPhase{server.PhaseGoAway, server.PhaseFlushed, server.PhaseClosed} {
		select {
		case p := <-phases:
			if p != want {
				t.Fatalf("phase %s, want %s", p, want)
			}
		case <-time.After(wait):
			t.Fatalf("no phase %s", want)
		}
	}
	wg.Wait()

	// Spread: the GOAWAYs span most of the window, and no 100ms slice holds much more than
	// its share (n/10).
	if len(arrivals) != n {
		t.Fatalf("%d of %d sessions got a GOAWAY", len(arrivals), n)
	}
	first, last := arrivals[0], arrivals[0]
	buckets := map[int64]int{}
	for _, a := range arrivals {
		first, last = minTime(first, a), maxTime(last, a)
	}
	for _, a := range arrivals {
		buckets[int64(a.Sub(first)/(100*time.Millisecond))]++
	}
	if span := last.Sub(first); span < d.SpreadWindow.Duration/2 {
		t.Errorf("GOAWAYs spread over %v, want most of the %v window", span, d.SpreadWindow.Duration)
	}
	for b, count := range buckets {
		if count > 2*n/10+2 {
			t.Errorf("%d GOAWAYs in the 100ms slice %d: a burst", count, b)
		}
	}
	// Closes complete asynchronously (a late accept is refused by its own flusher).
	eventually(t, "every connection closed", func() bool { return h.srv.Connections() == 0 })
}

func readFrame(r *raw) (*pb.Frame, []byte, error) { return readRaw(r) }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
