//go:build bench

package bench

// The receivers of TestFloor run in a process of their own (the test binary re-executed with
// receiversEnv set), so that their CPU and memory are never the measured server's and their
// reads compete with it only as another process's would. They are the lean protocol clients
// of TestDownlink (downlink_client.go) and report over loopback HTTP:
//
//	GET /stats               "connected C pushes P first F last L lost X" (receipt times, Unix ns)
//	GET /wait?pushes=P       the same, once at least P pushes arrived (at most 30 s)

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// receiversEnv, when set, makes the test binary a receivers process; its value is the JSON of
// receiversSpec.
const receiversEnv = "TCPGW_BENCH_RECEIVERS"

type receiversSpec struct {
	Addr, Control, SecretFile string
	Conns                     int
	Sources                   []string // source IPs, round-robin
	From                      int      // the first user is bench-<From>
	Latency                   bool     // record every push's latency (payload send time -> receipt)
	// WebSocketURL, when set, connects over WebSocket (ws://...) instead of TCP to Addr.
	WebSocketURL string
}

// ReceiverStats is what a receivers process reports.
type ReceiverStats struct {
	Connected, Pushes, Lost int64
	FirstNs, LastNs         int64 // earliest and latest receipt since the last reset (/stats?reset=1)
	// Push latency percentiles in µs (payload send time -> receipt), when the spec asked for
	// Latency; 0 otherwise.
	P50Us, P99Us, P999Us, MaxUs int64
}

// receiversMain runs the receivers process until its stdin closes (the test ended).
func receiversMain() int {
	var spec receiversSpec
	if err := json.Unmarshal([]byte(os.Getenv(receiversEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "receivers:", err)
		return 2
	}
	secret, err := os.ReadFile(spec.SecretFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "receivers:", err)
		return 2
	}
	var sources []net.IP
	for _, s := range spec.Sources {
		sources = append(sources, net.ParseIP(s))
	}
	rec := newDLRecorder()
	var connected atomic.Int64
	rec.measure.Store(spec.Latency)
	stats := func() ReceiverStats {
		st := ReceiverStats{Connected: connected.Load(), Pushes: rec.pushes.Load(), Lost: rec.lost.Load(),
			FirstNs: rec.firstNs.Load(), LastNs: rec.lastNs.Load()}
		rec.mu.Lock()
		st.P50Us, st.P99Us = rec.hist.ValueAtQuantile(50), rec.hist.ValueAtQuantile(99)
		st.P999Us, st.MaxUs = rec.hist.ValueAtQuantile(99.9), rec.hist.Max()
		rec.mu.Unlock()
		return st
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("reset") != "" {
			rec.reset()
		}
		_ = json.NewEncoder(w).Encode(stats())
	})
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		want, _ := strconv.ParseInt(r.URL.Query().Get("pushes"), 10, 64)
		deadline := time.Now().Add(30 * time.Second)
		for rec.pushes.Load() < want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // the receipts have no aggregate event; poll the count
		}
		_ = json.NewEncoder(w).Encode(stats())
	})
	ln, err := net.Listen("tcp", spec.Control)
	if err != nil {
		fmt.Fprintln(os.Stderr, "receivers:", err)
		return 2
	}
	go func() { _ = http.Serve(ln, mux) }()
	conns, err := dlConnectAll(context.Background(), spec.Addr, spec.WebSocketURL, sources, secret, spec.From, spec.Conns, rec)
	connected.Store(int64(len(conns)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "receivers: %d of %d connected, first error: %v\n", len(conns), spec.Conns, err)
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes our stdin or ends
	for _, c := range conns {
		c.close()
	}
	return 0
}

// Receivers is a running receivers process.
type Receivers struct {
	*Proc
	control string
	stdin   io.WriteCloser
}

// StartReceivers re-executes the test binary as a receivers process holding conns
// connections to addr from the given source IPs, and waits (at most 2 minutes) until it
// tried them all; it fails when fewer than conns connected.
func StartReceivers(ctx context.Context, addr, secretFile string, conns int, sources []string) (*Receivers, error) {
	return startReceivers(ctx, receiversSpec{Addr: addr, SecretFile: secretFile, Conns: conns, Sources: sources})
}

// startReceivers starts a receivers process as spec says (its Control address is chosen here).
func startReceivers(ctx context.Context, spec receiversSpec) (*Receivers, error) {
	control, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	spec.Control = control
	conns := spec.Conns
	specJSON, _ := json.Marshal(spec)
	cmd := command(ctx, os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), receiversEnv+"="+string(specJSON))
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = 10 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	buf := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Name: "receivers", Pid: cmd.Process.Pid, cmd: cmd, log: &buf.b, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	r := &Receivers{Proc: p, control: control, stdin: stdin}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := r.get(ctx, "/stats")
		if err == nil && st.Connected > 0 {
			if st.Connected < int64(conns) {
				r.Stop()
				return nil, fmt.Errorf("only %d of %d receivers connected:\n%s", st.Connected, conns, p.Output())
			}
			return r, nil
		}
		if exited, werr := p.Exited(); exited || time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("receivers not connected (exited %v: %v):\n%s", exited, werr, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop closes the receivers' stdin (they close their connections and exit), then stops them.
func (r *Receivers) Stop() {
	_ = r.stdin.Close()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
	}
	r.Proc.Stop()
}

// Stats reads the receivers' counters; reset clears the first and last receipt times.
func (r *Receivers) Stats(ctx context.Context, reset bool) (ReceiverStats, error) {
	if reset {
		return r.get(ctx, "/stats?reset=1")
	}
	return r.get(ctx, "/stats")
}

// Wait returns the counters once at least pushes arrived in all, or after 30 s.
func (r *Receivers) Wait(ctx context.Context, pushes int64) (ReceiverStats, error) {
	return r.get(ctx, "/wait?pushes="+strconv.FormatInt(pushes, 10))
}

func (r *Receivers) get(ctx context.Context, path string) (ReceiverStats, error) {
	var st ReceiverStats
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.control+path, nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return st, fmt.Errorf("receivers %s: %s %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}
