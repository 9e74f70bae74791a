package drain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"sigs.k8s.io/yaml"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
	"github.com/tcpgateway/tcpgateway/test/lb"
	"github.com/tcpgateway/tcpgateway/test/traffic"
)

// Bounds of the harness's own waits.
const (
	startTimeout  = 60 * time.Second // a gateway process until /readyz answers 200
	startAttempts = 3                // a port picked free may be taken before the child binds it
	pollEvery     = 50 * time.Millisecond
	partitions    = 6
)

// cluster is three gateway processes behind the test LB, with their backends and topics.
type cluster struct {
	t        *testing.T
	sc       scale
	bins     binaries
	dir      string
	secret   []byte
	keyFile  string
	brokers  string
	topic    string
	receipts string
	echoURL  string
	hold     *holdBackend
	lb       *lb.LB
	gws      []*gatewayProc
}

func newCluster(t *testing.T, sc scale, gateways int) *cluster {
	t.Helper()
	c := &cluster{t: t, sc: sc, bins: buildBinaries(t), dir: t.TempDir(),
		secret: []byte("drain-test-hs256-secret-0123456789abcdef")}
	c.brokers = kafkatest.Bootstrap(t)
	c.topic = kafkatest.CreateTopic(t, c.brokers, partitions)
	c.receipts = kafkatest.CreateTopic(t, c.brokers, partitions)
	c.keyFile = filepath.Join(c.dir, "hs256.secret")
	if err := os.WriteFile(c.keyFile, c.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	c.hold = newHoldBackend(t)
	c.echoURL = c.startEcho()

	// The gateways start in parallel: each spends most of its start-up positioning its
	// Kafka readers.
	ids := make([]string, gateways)
	c.gws = make([]*gatewayProc, gateways)
	errs := make([]error, gateways)
	var wg sync.WaitGroup
	for i := range gateways {
		ids[i] = fmt.Sprintf("gw-%d", i)
		wg.Go(func() { c.gws[i], errs[i] = c.startGateway(ids[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	var err error
	c.lb, err = lb.New("127.0.0.1:0", lb.Options{DeregistrationDelay: sc.lbDeregistration})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.lb.Close() })
	for _, g := range c.gws {
		c.lb.Add(g.clientAddr)
	}
	return c
}

// token mints an HS256 token for user with the group tags.
func (c *cluster) token(user string, groups []string) string {
	claims := jwt.MapClaims{"sub": user, "exp": time.Now().Add(2 * time.Hour).Unix()}
	if len(groups) > 0 {
		claims["groups"] = groups
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.secret)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// connectFleet connects n clients through the LB (test/traffic).
func (c *cluster) connectFleet(n int) *traffic.Fleet {
	c.t.Helper()
	return traffic.Connect(c.t, traffic.FleetOptions{Addr: c.lb.Addr(), Clients: n, Token: c.token, Tag: "drain-test"})
}

// startProducer pushes to the downlink topic at the scale's rate, to n users (test/traffic).
func (c *cluster) startProducer(n int) *traffic.Producer {
	c.t.Helper()
	return traffic.StartProducer(c.t, traffic.ProducerOptions{Brokers: []string{c.brokers}, Topic: c.topic, Rate: c.sc.rate, Users: n})
}

// freeAddrs returns n loopback addresses whose ports were free a moment ago: all n are
// bound at once (so they differ), then released for the child to bind.
func freeAddrs(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// childEnv is the test's environment without the variables that would override the
// generated configuration (gateway/config's environment overrides).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "POD_NAME", "TCPGW_SERVER_ID", "TCPGW_LISTEN_CLIENTS", "TCPGW_LISTEN_ADMIN", "TCPGW_KAFKA_BROKERS":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// proc is a child process with its output kept for reports.
type proc struct {
	name     string
	cmd      *exec.Cmd
	log      *procLog
	done     chan struct{} // closed when the process exited and was reaped
	waitErr  error         // valid after done
	exitedAt time.Time     // valid after done
}

// startProc runs bin; the process is SIGKILLed when the test ends (cleanup) or dies.
func startProc(t *testing.T, name, bin string, args ...string) (*proc, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = childEnv()
	dieWithParent(cmd)
	p := &proc{name: name, cmd: cmd, log: newProcLog(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		p.exitedAt = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done // bounded: SIGKILL, then WaitDelay
		if p.log.races() > 0 {
			t.Errorf("%s reported a data race:\n%s", name, p.log.tail(200))
		}
	})
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig; a process that already exited is not an error.
func (p *proc) signal(sig os.Signal) error {
	err := p.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// waitExit waits at most limit for the process to end and returns its exit code (-1 when
// killed by a signal).
func (p *proc) waitExit(limit time.Duration) (int, error) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-time.After(limit):
		return 0, fmt.Errorf("%s still running after %s", p.name, limit)
	}
}

// startEcho runs test/echobackend on a free port and returns its URL.
func (c *cluster) startEcho() string {
	c.t.Helper()
	var last error
	for range startAttempts {
		addrs, err := freeAddrs(1)
		if err != nil {
			c.t.Fatal(err)
		}
		p, err := startProc(c.t, "echobackend", c.bins.echo, "-listen", addrs[0])
		if err != nil {
			c.t.Fatal(err)
		}
		if last = waitDial(p, addrs[0]); last == nil {
			return "http://" + addrs[0]
		}
	}
	c.t.Fatal(last)
	return ""
}

// waitDial waits until addr accepts TCP connections, or p exits.
func waitDial(p *proc, addr string) error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited (%v):\n%s", p.name, p.waitErr, p.log.tail(20))
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = conn.Close()
			return nil
		}
		time.Sleep(pollEvery) // nothing to wait on: the child tells us nothing when it listens
	}
	return fmt.Errorf("%s not listening on %s after %s", p.name, addr, startTimeout)
}

// gatewayProc is one gateway process.
type gatewayProc struct {
	*proc
	id         string
	clientAddr string
	adminAddr  string
	cfg        config.Config
}

// config is the YAML the process reads: generous limits, the drain knobs of the scale, the
// echo route on test/echobackend and the hold route on the in-test backend.
func (c *cluster) config(id, clients, admin string) config.Config {
	return config.Config{
		ServerID: id,
		Listen:   config.Listen{Clients: clients, Admin: admin},
		Limits: config.Limits{
			RequestsPerSecond: 10000,
			RequestBurst:      10000,
		},
		Auth: config.Auth{JWT: &config.JWTAuth{HS256SecretFile: c.keyFile}},
		Routes: []config.Route{
			{Service: "echo", URL: c.echoURL, Timeout: dur(10 * time.Second)},
			// Held requests outlive the whole drain.
			{Service: "hold", URL: c.hold.srv.URL, Timeout: dur(2 * time.Minute)},
		},
		Kafka:   config.Kafka{Brokers: []string{c.brokers}, DownlinkTopic: c.topic, ReceiptsTopic: c.receipts},
		Drain:   c.sc.drain,
		Logging: config.Logging{Level: "info", Format: "json"},
	}
}

// startGateway writes a configuration with free ports, starts the process and waits for
// /readyz. A port taken between picking and binding makes the child exit at once; it is
// retried with other ports.
func (c *cluster) startGateway(id string) (*gatewayProc, error) {
	var last error
	for attempt := range startAttempts {
		addrs, err := freeAddrs(2)
		if err != nil {
			return nil, err
		}
		g := &gatewayProc{id: id, clientAddr: addrs[0], adminAddr: addrs[1], cfg: c.config(id, addrs[0], addrs[1])}
		data, err := yaml.Marshal(g.cfg)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(c.dir, fmt.Sprintf("%s.%d.yaml", id, attempt))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
		if g.proc, err = startProc(c.t, id, c.bins.gateway, "-config", path); err != nil {
			return nil, err
		}
		if last = g.waitReady(); last == nil {
			return g, nil
		}
		if !g.exited() || !strings.Contains(g.log.String(), "address already in use") {
			return nil, last
		}
	}
	return nil, last
}

// waitReady polls /readyz until 200 (every Kafka partition positioned).
func (g *gatewayProc) waitReady() error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if g.exited() {
			return fmt.Errorf("%s exited before ready (%v):\n%s", g.id, g.waitErr, g.log.tail(30))
		}
		resp, err := hc.Get("http://" + g.adminAddr + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = strings.TrimSpace(string(body))
		} else {
			last = err.Error()
		}
		time.Sleep(pollEvery) // readiness has no push notification
	}
	return fmt.Errorf("%s not ready after %s (%s):\n%s", g.id, startTimeout, last, g.log.tail(30))
}

// gatewayStatus is the part of /status (app.Status) the tests read.
type gatewayStatus struct {
	ServerID    string `json:"serverID"`
	Draining    bool   `json:"draining"`
	Connections int64  `json:"connections"`
	Sessions    int    `json:"sessions"`
}

func (g *gatewayProc) status() (gatewayStatus, error) {
	var st gatewayStatus
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + g.adminAddr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s /status: %s", g.id, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// drainResult is the answer of /drain?wait=true.
type drainResult struct {
	status int
	body   string
	at     time.Time
	err    error
}

// preStop does what the kubelet's preStop httpGet does: GET /drain?wait=true, which answers
// once the drain finished. The kubelet bounds the hook by terminationGracePeriodSeconds.
func (g *gatewayProc) preStop() drainResult {
	hc := &http.Client{Timeout: g.cfg.Drain.TerminationGracePeriod()}
	resp, err := hc.Get("http://" + g.adminAddr + "/drain?wait=true")
	if err != nil {
		return drainResult{err: err, at: time.Now()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return drainResult{status: resp.StatusCode, body: strings.TrimSpace(string(body)), at: time.Now()}
}

// waitSessions waits until the gateways together hold n sessions (each registered with its
// gateway's downlink, so records pushed from now on reach it).
func (c *cluster) waitSessions(n int) map[string]int {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		per := map[string]int{}
		total := 0
		var err error
		for _, g := range c.gws {
			var st gatewayStatus
			if st, err = g.status(); err != nil {
				break
			}
			per[g.id] = st.Sessions
			total += st.Sessions
		}
		if err == nil && total == n {
			return per
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("gateways hold %d sessions (%v, err %v), want %d", total, per, err, n)
		}
		time.Sleep(pollEvery) // session counts are only visible through /status
	}
}

// procLog keeps a child's output: the last lines for reports, the drain phases the gateway
// logs, and data race reports.
type procLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string // ring of the last maxLines
	next    int
	phases  []drainPhase
	raceN   atomic.Int64
	full    bytes.Buffer // bounded copy for String
}

const maxLines = 400

type drainPhase struct {
	phase string
	since time.Duration
}

func newProcLog() *procLog { return &procLog{} }

func (l *procLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.full.Len() < 1<<20 {
		l.full.Write(b)
	}
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(b), nil
}

func (l *procLog) line(s string) {
	if len(l.lines) < maxLines {
		l.lines = append(l.lines, s)
	} else {
		l.lines[l.next] = s
		l.next = (l.next + 1) % maxLines
	}
	if strings.Contains(s, "WARNING: DATA RACE") {
		l.raceN.Add(1)
	}
	var rec struct {
		Msg        string `json:"msg"`
		Phase      string `json:"phase"`
		SinceStart string `json:"sinceStart"`
		Took       string `json:"took"`
	}
	if json.Unmarshal([]byte(s), &rec) != nil {
		return
	}
	switch rec.Msg {
	case "drain phase done":
		d, _ := time.ParseDuration(rec.SinceStart)
		l.phases = append(l.phases, drainPhase{rec.Phase, d})
	case "drain finished":
		d, _ := time.ParseDuration(rec.Took)
		l.phases = append(l.phases, drainPhase{"finished", d})
	}
}

func (l *procLog) races() int64 { return l.raceN.Load() }

// drainPhases are the phases the gateway logged, in order, with their end since the start.
func (l *procLog) drainPhases() []drainPhase {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]drainPhase(nil), l.phases...)
}

// tail is the last n lines.
func (l *procLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ordered := append(append([]string(nil), l.lines[l.next:]...), l.lines[:l.next]...)
	if len(ordered) > n {
		ordered = ordered[len(ordered)-n:]
	}
	return strings.Join(ordered, "\n")
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.full.String()
}

// holdBackend is an uplink backend that holds every request until released: requests in
// flight across a drain.
type holdBackend struct {
	srv     *httptest.Server
	entered chan struct{} // one value per request that arrived
	release chan struct{}
	once    sync.Once
	count   atomic.Int64
}

func newHoldBackend(t *testing.T) *holdBackend {
	h := &holdBackend{entered: make(chan struct{}, 100000), release: make(chan struct{})}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.count.Add(1)
		h.entered <- struct{}{}
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
		_, _ = fmt.Fprintf(w, "released %s", body)
	}))
	t.Cleanup(func() {
		h.releaseAll()
		h.srv.Close()
	})
	return h
}

func (h *holdBackend) releaseAll() { h.once.Do(func() { close(h.release) }) }

// waitEntered waits until n requests arrived.
func (h *holdBackend) waitEntered(n int, limit time.Duration) error {
	timeout := time.After(limit)
	for i := range n {
		select {
		case <-h.entered:
		case <-timeout:
			return fmt.Errorf("%d of %d held requests reached the backend after %s", i, n, limit)
		}
	}
	return nil
}
