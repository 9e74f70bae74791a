package sessioncount

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// serve runs h on a loopback port for the test and returns its /metrics URL.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/metrics"
}

// Hostile and broken pods: each read ends within the timeout with its typed reason, counted,
// and the good pod among them is read as if they were not there.
func TestReaderBoundsHostilePods(t *testing.T) {
	const timeout = 300 * time.Millisecond
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	good := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "# TYPE tcpgw_sessions gauge\ntcpgw_sessions 12\n# TYPE tcpgw_draining gauge\ntcpgw_draining 0\n")
	})
	hang := serve(t, func(http.ResponseWriter, *http.Request) {
		select {
		case <-stop:
		case <-time.After(time.Minute):
		}
	})
	drip := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		for range 600 { // a comment line that never ends, one byte at a time
			if _, err := w.Write([]byte("#")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	huge := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		line := "# " + strings.Repeat("x", 1000) + "\n"
		for range 4096 { // 4 MiB: more than MaxBytes
			if _, err := w.Write([]byte(line)); err != nil {
				return
			}
		}
	})
	redirect := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, good, http.StatusFound) // would be fine if followed: it must not be
	})
	failing := serve(t, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusInternalServerError) })
	garbage := serve(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "{\"sessions\": 12}\n") })
	notGateway := serve(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "# TYPE up gauge\nup 1\n") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/metrics"
	ln.Close()

	var targets []Target
	for _, t := range [][2]string{{"good", good}, {"hang", hang}, {"drip", drip}, {"huge", huge}, {"redirect", redirect},
		{"failing", failing}, {"garbage", garbage}, {"not-gateway", notGateway}, {"closed", closed}} {
		targets = append(targets, Target{Pod: t[0], URL: t[1]})
	}
	want := map[string]Reason{"hang": Timeout, "drip": Timeout, "huge": TooLarge, "redirect": BadStatus,
		"failing": BadStatus, "garbage": Malformed, "not-gateway": Missing, "closed": Unreachable}
	before := map[string]float64{}
	for _, r := range append(Reasons(), ResultOK) {
		before[string(r)] = testutil.ToFloat64(reads.WithLabelValues(string(r)))
	}

	r := &Reader{Timeout: timeout, MaxBytes: 64 << 10}
	start := time.Now()
	counts := r.Read(context.Background(), targets)
	took := time.Since(start)
	// Every pod is read at once (Parallel ≥ 9), so the whole read takes one timeout, plus
	// scheduling slack on a loaded machine.
	if took > timeout+2*time.Second {
		t.Errorf("Read took %v with a %v timeout", took, timeout)
	}
	got := map[string]float64{}
	for i, c := range counts {
		if c.Pod != targets[i].Pod {
			t.Fatalf("count %d is %s, want %s (targets' order)", i, c.Pod, targets[i].Pod)
		}
		if c.At.IsZero() {
			t.Errorf("%s: no time", c.Pod)
		}
		if c.Pod == "good" {
			if c.Err != nil || c.Sessions != 12 || c.Draining {
				t.Errorf("good pod read as %+v", c)
			}
			got[ResultOK]++
			continue
		}
		var e *Error
		if !errors.As(c.Err, &e) || e.Reason != want[c.Pod] {
			t.Errorf("%s: %v, want reason %s", c.Pod, c.Err, want[c.Pod])
			continue
		}
		got[string(e.Reason)]++
	}
	for label, n := range got {
		if d := testutil.ToFloat64(reads.WithLabelValues(label)) - before[label]; d != n {
			t.Errorf("tcpgw_operator_session_reads_total{result=%q} grew by %v, want %v", label, d, n)
		}
	}
}

// Parallel bounds the reads in flight: nine pods that hang, three at a time, take three
// timeouts.
func TestReaderParallelBound(t *testing.T) {
	const timeout = 200 * time.Millisecond
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	hang := serve(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
	})
	var targets []Target
	for i := range 9 {
		targets = append(targets, Target{Pod: fmt.Sprint("p", i), URL: hang})
	}
	r := &Reader{Timeout: timeout, Parallel: 3}
	start := time.Now()
	for _, c := range r.Read(context.Background(), targets) {
		var e *Error
		if !errors.As(c.Err, &e) || e.Reason != Timeout {
			t.Errorf("%s: %v, want a timeout", c.Pod, c.Err)
		}
	}
	if took := time.Since(start); took < 3*timeout {
		t.Errorf("9 reads 3 at a time took %v, less than 3 timeouts of %v", took, timeout)
	}
}
