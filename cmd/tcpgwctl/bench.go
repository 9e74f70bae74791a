package main

// tcpgwctl bench: a load generator for the gateway (and the benchmark baseline).
//
// It opens -conns connections at -ramp per second, round-robin over the -sources addresses
// (one source IP has ~28k ephemeral ports), then either holds them idle with heartbeats
// (-rate 0) or offers -rate requests per second in total, open loop: request k is due at
// start + k/rate whatever happened to the previous ones (a slow server cannot hold requests
// back), and its latency runs from just before its write to its response, so a write blocked
// on a full socket buffer is charged to the server. How late the pacer was against the
// schedule is reported apart as the send lag: Go timers wake ~0.5 ms late on the benchmark
// machine, which is the tool's delay, not the server's. The first -warmup of load is not
// measured; -duration is. Above one process's
// 20000 open files, -procs P re-executes this command P times, each child holding its share of
// connections and rate, and merges their results.
//
// Driver. The default "raw" driver speaks the protocol directly with sdk/go/protocol: per
// connection one reader goroutine with a 4 KiB bufio.Reader, requests written by one pacer
// goroutine per process from a pre-encoded REQUEST (only the seq varint changes), responses
// parsed with protowire without building messages. "-driver sdk" uses sdk/go/client instead
// (one client.Client per connection). The SDK costs three goroutines, two 4 KiB buffers and a
// reconnect supervisor per connection, plus a goroutine, a channel, a frame build and a full
// unmarshal per request: 2.3x the memory for idle connections and ~30 µs more CPU per request,
// which on the 2-core benchmark machine, where load generator and server share the cores, is
// taken from the server under test. docs/benchmarks.md has the measurements.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// benchConfig is the bench command's flags.
type benchConfig struct {
	Addr       string
	Token      string
	SecretFile string
	UserPrefix string
	Conns      int
	Sources    []net.IP
	Ramp       float64
	Rate       float64
	Payload    int
	Warmup     time.Duration
	Duration   time.Duration
	Timeout    time.Duration
	Service    string
	Method     string
	Procs      int
	JSON       bool
	Driver     string
	MaxFrame   int
	// ProtocolVersion is sent in every HANDSHAKE (raw driver): an older gateway is measured
	// on the protocol it speaks.
	ProtocolVersion uint32
	Issuer          string
	Audience        string
	// TLS, when set, makes every connection TLS (both drivers).
	TLS *tls.Config

	// child is this process's index when it was started by a parent with -procs; -1 otherwise.
	child int
	// secret is the HS256 secret read from SecretFile.
	secret []byte
}

const benchUsage = `tcpgwctl bench -addr HOST:PORT (-token T | -secret-file F [-user-prefix P]) [flags]

Opens -conns connections (at -ramp per second, round-robin over -sources), then holds them
(-rate 0: idle, heartbeats only) or offers -rate requests/s in total for -warmup + -duration,
prints connections established/failed, requests ok/failed by code, throughput and latency
percentiles of the -duration window, and exits. Progress lines "bench: phase=..." go to stderr.
`

func parseBenchFlags(args []string) (*benchConfig, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	c := &benchConfig{}
	var sources string
	var protocolVersion uint
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:7000", "gateway address")
	fs.StringVar(&c.Token, "token", os.Getenv("TCPGW_TOKEN"), "one token for every connection (default $TCPGW_TOKEN)")
	fs.StringVar(&c.SecretFile, "secret-file", "", "HS256 secret: mint one token per connection (user <user-prefix><index>) instead of -token")
	fs.StringVar(&c.UserPrefix, "user-prefix", "bench-", "user id prefix of the minted tokens")
	fs.IntVar(&c.Conns, "conns", 100, "connections to open")
	fs.StringVar(&sources, "sources", "", "comma-separated local source IPs or prefixes (127.11.0.0/18: all its addresses, at most 65536), used round-robin (each gives ~28k ports); empty: the kernel's choice")
	fs.Float64Var(&c.Ramp, "ramp", 2000, "new connections per second (all processes together)")
	fs.Float64Var(&c.Rate, "rate", 1000, "requests per second offered in total; 0 holds the connections idle (heartbeats only)")
	fs.IntVar(&c.Payload, "payload", 128, "request payload bytes")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "load (or holding) time before the measured window")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured window")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Second, "how long to wait for responses after the last request (and per connection attempt)")
	fs.StringVar(&c.Service, "service", "echo", "request service (route)")
	fs.StringVar(&c.Method, "method", "bench", "request method")
	fs.IntVar(&c.Procs, "procs", 1, "processes sharing the connections and the rate (re-executes itself); needed above ~19000 connections")
	fs.BoolVar(&c.JSON, "json", false, "print the result as JSON on stdout")
	fs.StringVar(&c.Driver, "driver", "raw", `"raw" (lean protocol driver) or "sdk" (sdk/go/client, one Client per connection)`)
	fs.IntVar(&c.MaxFrame, "max-frame", 65536, "largest frame accepted from the gateway")
	fs.UintVar(&protocolVersion, "protocol-version", protocol.Version, "Handshake.protocol_version to send (raw driver); 1 for a gateway built before protocol version 2")
	fs.StringVar(&c.Issuer, "issuer", "", "iss claim of the minted tokens (-secret-file)")
	fs.StringVar(&c.Audience, "audience", "", "aud claim of the minted tokens (-secret-file)")
	fs.IntVar(&c.child, "child", -1, "internal: index of this child process")
	var tf tlsFlags
	tf.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	tlsConfig, err := tf.config()
	if err != nil {
		return nil, err
	}
	if tlsConfig != nil && tlsConfig.ServerName == "" {
		if host, _, err := net.SplitHostPort(c.Addr); err == nil {
			tlsConfig.ServerName = host
		}
	}
	c.TLS = tlsConfig
	c.ProtocolVersion = uint32(min(protocolVersion, math.MaxUint32)) // range checked below
	for _, s := range strings.Split(sources, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil || p.Addr().BitLen()-p.Bits() > 16 {
				return nil, fmt.Errorf("-sources: %q is not a prefix of at most 65536 addresses", s)
			}
			for a, i := p.Masked().Addr(), 0; i < 1<<(p.Addr().BitLen()-p.Bits()); a, i = a.Next(), i+1 {
				c.Sources = append(c.Sources, net.IP(a.AsSlice()))
			}
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("-sources: %q is not an IP address", s)
		}
		c.Sources = append(c.Sources, ip)
	}
	switch {
	case c.Conns < 1:
		return nil, errors.New("-conns must be at least 1")
	case c.Procs < 1 || c.Procs > c.Conns:
		return nil, errors.New("-procs must be between 1 and -conns")
	case c.Ramp <= 0:
		return nil, errors.New("-ramp must be positive")
	case c.Rate < 0 || c.Payload < 0 || c.Warmup < 0 || c.Duration <= 0 || c.Timeout <= 0:
		return nil, errors.New("-rate, -payload and -warmup must not be negative; -duration and -timeout must be positive")
	case c.Driver != "raw" && c.Driver != "sdk":
		return nil, fmt.Errorf("-driver %q: want raw or sdk", c.Driver)
	case protocolVersion < 1 || protocolVersion > math.MaxUint32:
		return nil, errors.New("-protocol-version must be between 1 and 2^32-1")
	case c.ProtocolVersion != protocol.Version && c.Driver != "raw":
		return nil, errors.New("-protocol-version needs -driver raw (the SDK speaks protocol.Version)")
	case c.Token == "" && c.SecretFile == "":
		return nil, errors.New("one of -token and -secret-file is required")
	}
	if c.SecretFile != "" {
		b, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return nil, err
		}
		c.secret = b
	}
	return c, nil
}

// runBench is the bench subcommand.
func runBench(ctx context.Context, args []string) error {
	cfg, err := parseBenchFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if cfg.child >= 0 {
		return runBenchChild(ctx, cfg)
	}
	res, err := coordinate(ctx, cfg, args)
	if err != nil {
		return err
	}
	if cfg.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.print(os.Stdout)
	return nil
}

// ---------------------------------------------------------------------------------------
// Coordination: one in-process worker, or -procs child processes.

// workerLink is how the coordinator drives one worker, in this process or a child.
type workerLink struct {
	established chan *benchResult // the connection phase's outcome
	start       chan time.Time    // when to start the load (the same instant for all)
	result      chan *benchResult // the final result
	failed      chan error        // the worker could not run
}

func newLink() *workerLink {
	return &workerLink{established: make(chan *benchResult, 1), start: make(chan time.Time, 1),
		result: make(chan *benchResult, 1), failed: make(chan error, 1)}
}

// share is the part [lo, hi) of n items that worker i of p gets.
func share(n, i, p int) (lo, hi int) { return n * i / p, n * (i + 1) / p }

func coordinate(ctx context.Context, cfg *benchConfig, args []string) (*benchResult, error) {
	// On any return the workers are cancelled (children killed) first, then waited for.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	links := make([]*workerLink, cfg.Procs)
	if cfg.Procs == 1 {
		links[0] = newLink()
		w := newWorker(cfg, 0, cfg.Conns, 1)
		go w.run(ctx, links[0])
	} else {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		for i := range links {
			links[i] = newLink()
			childArgs := append([]string{"bench"}, args...)
			childArgs = append(childArgs, "-child", strconv.Itoa(i), "-json=false")
			if err := startChild(ctx, &wg, self, childArgs, links[i]); err != nil {
				return nil, err
			}
		}
	}

	began := time.Now()
	// Connection phase: bounded by the ramp plus one connection timeout and some slack.
	connectLimit := time.Duration(float64(cfg.Conns)/cfg.Ramp*float64(time.Second)) + cfg.Timeout + 30*time.Second
	deadline := time.NewTimer(connectLimit)
	defer deadline.Stop()
	total := &benchResult{}
	for _, l := range links {
		select {
		case r := <-l.established:
			total.mergeConnections(r)
		case err := <-l.failed:
			return nil, err
		case <-deadline.C:
			return nil, fmt.Errorf("connection phase did not end within %s", connectLimit)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	total.ConnectSeconds = time.Since(began).Seconds()
	fmt.Fprintf(os.Stderr, "bench: phase=established conns=%d established=%d failed=%d seconds=%.1f\n",
		cfg.Conns, total.Established, cfg.Conns-total.Established, total.ConnectSeconds)

	start := time.Now().Add(100 * time.Millisecond)
	for _, l := range links {
		l.start <- start
	}
	// The phase lines are the harness's cue to sample the server (CPU, RSS) at the same
	// instants as the workers' measured window.
	measureStart, measureEnd := start.Add(cfg.Warmup), start.Add(cfg.Warmup+cfg.Duration)
	if !sleepUntil(ctx, measureStart) {
		return nil, ctx.Err()
	}
	fmt.Fprintln(os.Stderr, "bench: phase=measure-start")
	if !sleepUntil(ctx, measureEnd) {
		return nil, ctx.Err()
	}
	fmt.Fprintln(os.Stderr, "bench: phase=measure-end")

	resultLimit := time.NewTimer(cfg.Timeout + 60*time.Second)
	defer resultLimit.Stop()
	for _, l := range links {
		select {
		case r := <-l.result:
			if err := total.merge(r); err != nil {
				return nil, fmt.Errorf("merging a worker's latencies: %w", err)
			}
		case err := <-l.failed:
			return nil, err
		case <-resultLimit.C:
			return nil, errors.New("workers did not report their results in time")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	fmt.Fprintln(os.Stderr, "bench: phase=done")
	total.finish(cfg)
	return total, nil
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// startChild runs one child worker process. Protocol: the child prints JSON lines on stdout
// ({"event":"established",...} then {"event":"result",...}); the parent writes
// "go <unix nanoseconds>\n" on its stdin when all children are connected. The child's stderr is
// passed through. Cancelling ctx kills the child.
func startChild(ctx context.Context, wg *sync.WaitGroup, self string, args []string, l *workerLink) error {
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		select {
		case t := <-l.start:
			fmt.Fprintf(stdin, "go %d\n", t.UnixNano())
		case <-ctx.Done():
		}
	}()
	go func() {
		defer wg.Done()
		defer stdin.Close()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<24)
		gotResult := false
		for sc.Scan() {
			var ev struct {
				Event string `json:"event"`
				*benchResult
			}
			ev.benchResult = &benchResult{}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				continue
			}
			switch ev.Event {
			case "established":
				l.established <- ev.benchResult
			case "result":
				l.result <- ev.benchResult
				gotResult = true
			}
		}
		err := cmd.Wait()
		if !gotResult {
			l.failed <- fmt.Errorf("bench child %v exited without a result: %v", args, err)
		}
	}()
	return nil
}

// runBenchChild is a worker started by a parent with -procs.
func runBenchChild(ctx context.Context, cfg *benchConfig) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lo, hi := share(cfg.Conns, cfg.child, cfg.Procs)
	w := newWorker(cfg, lo, hi, cfg.Procs)
	l := newLink()
	go w.run(ctx, l)
	emit := func(event string, r *benchResult) {
		b, _ := json.Marshal(struct {
			Event string `json:"event"`
			*benchResult
		}{event, r})
		fmt.Fprintf(os.Stdout, "%s\n", b)
	}
	go func() {
		// The parent's "go" line. The parent keeps stdin open while it waits for this child:
		// EOF means it is gone, and the child stops too.
		defer cancel()
		started := false
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if ns, ok := strings.CutPrefix(sc.Text(), "go "); ok && !started {
				if n, err := strconv.ParseInt(ns, 10, 64); err == nil {
					l.start <- time.Unix(0, n)
					started = true
				}
			}
		}
	}()
	for {
		select {
		case r := <-l.established:
			emit("established", r)
		case r := <-l.result:
			emit("result", r)
			return nil
		case err := <-l.failed:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ---------------------------------------------------------------------------------------
// Worker: one process's connections.

type worker struct {
	cfg    *benchConfig
	lo, hi int     // global connection indices [lo, hi)
	rate   float64 // this worker's share of the request rate
	ramp   float64

	base  time.Time // monotonic origin of every nanosecond stamp below
	reqs  []byte    // the REQUEST field, encoded once (raw driver)
	conns []benchConn

	measureFrom atomic.Int64 // ns since base; requests sent before it are warm-up
	closing     atomic.Bool

	hist      *latencies
	lag       *latencies // how late the pacer sent requests against the schedule
	ok        atomic.Int64
	codes     [32]atomic.Int64 // failed responses by pb.ErrorCode
	local     sync.Map         // failed requests by local reason (string -> *atomic.Int64)
	sent      atomic.Int64     // measured requests sent
	totalSent atomic.Int64     // all requests sent, warm-up included
	responses atomic.Int64     // all responses received, warm-up included
	pings     atomic.Int64
	pongs     atomic.Int64
	lost      atomic.Int64 // connections that ended before the bench closed them

	failMu      sync.Mutex
	connectFail map[string]int
}

// benchConn is one connection of a driver.
type benchConn interface {
	// request sends one REQUEST now; sent (ns since base) is its latency's origin.
	request(sent int64)
	ping()
	// outstanding is the number of requests without a response.
	outstanding() int
	// abandon counts the outstanding requests as failed and closes the connection.
	abandon(reason string)
}

func newWorker(cfg *benchConfig, lo, hi, procs int) *worker {
	w := &worker{cfg: cfg, lo: lo, hi: hi, rate: cfg.Rate / float64(procs), ramp: cfg.Ramp / float64(procs),
		base: time.Now(), connectFail: map[string]int{}, hist: newLatencies(), lag: newLatencies()}
	w.measureFrom.Store(math.MaxInt64)
	w.reqs, _ = proto.Marshal(&pb.Frame{Body: &pb.Frame_Request{Request: &pb.Request{
		Service: cfg.Service, Method: cfg.Method, Payload: payloadOf(cfg.Payload)}}})
	return w
}

func payloadOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

func (w *worker) now() int64 { return int64(time.Since(w.base)) }

func (w *worker) failLocal(reason string, n int64) {
	v, _ := w.local.LoadOrStore(reason, new(atomic.Int64))
	v.(*atomic.Int64).Add(n)
}

// complete records the response to a request written at sent.
func (w *worker) complete(sent int64, code pb.ErrorCode) {
	w.responses.Add(1)
	if sent < w.measureFrom.Load() {
		return
	}
	if code == pb.ErrorCode_ERROR_CODE_OK {
		w.ok.Add(1)
		w.hist.record(w.now() - sent)
		return
	}
	if int(code) < len(w.codes) {
		w.codes[code].Add(1)
	}
}

func (w *worker) run(ctx context.Context, l *workerLink) {
	if w.cfg.Driver == "raw" {
		if err := w.checkEncoding(); err != nil {
			l.failed <- err
			return
		}
	}
	w.connect(ctx)
	l.established <- w.snapshotConnections()

	var start time.Time
	select {
	case start = <-l.start:
	case <-ctx.Done():
		w.closeAll()
		return
	}
	startNs := int64(time.Until(start)) + w.now()
	w.measureFrom.Store(startNs + int64(w.cfg.Warmup))
	endNs := startNs + int64(w.cfg.Warmup+w.cfg.Duration)

	hbCtx, hbStop := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		w.heartbeat(hbCtx)
	}()
	if w.rate > 0 {
		w.pace(ctx, startNs, endNs)
	} else {
		sleepUntil(ctx, w.base.Add(time.Duration(endNs)))
	}
	hbStop()
	<-hbDone
	w.drain(ctx)
	w.closeAll()
	l.result <- w.snapshot()
}

// connect opens this worker's connections at its ramp rate with a pool of dialers.
func (w *worker) connect(ctx context.Context) {
	n := w.hi - w.lo
	slots := make([]benchConn, n)
	idx := make(chan int)
	var wg sync.WaitGroup
	for range min(n, 128) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				c, err := w.dial(ctx, w.lo+i)
				if err != nil {
					w.failMu.Lock()
					w.connectFail[classify(err)]++
					w.failMu.Unlock()
					continue
				}
				slots[i] = c
			}
		}()
	}
	began := time.Now()
	for i := range n {
		due := began.Add(time.Duration(float64(i) / w.ramp * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			if !sleepUntil(ctx, due) {
				break
			}
		}
		idx <- i
	}
	close(idx)
	wg.Wait()
	for _, c := range slots {
		if c != nil {
			w.conns = append(w.conns, c)
		}
	}
}

func (w *worker) token(i int) (string, error) {
	if w.cfg.secret == nil {
		return w.cfg.Token, nil
	}
	now := time.Now()
	claims := jwt.MapClaims{"sub": w.cfg.UserPrefix + strconv.Itoa(i), "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix()}
	if w.cfg.Issuer != "" {
		claims["iss"] = w.cfg.Issuer
	}
	if w.cfg.Audience != "" {
		claims["aud"] = w.cfg.Audience
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(w.cfg.secret)
}

func (w *worker) dialer(i int) *net.Dialer {
	d := &net.Dialer{Timeout: w.cfg.Timeout}
	if len(w.cfg.Sources) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: w.cfg.Sources[i%len(w.cfg.Sources)]}
	}
	return d
}

func (w *worker) dial(ctx context.Context, i int) (benchConn, error) {
	token, err := w.token(i)
	if err != nil {
		return nil, err
	}
	device := "bench-" + strconv.Itoa(i)
	if w.cfg.Driver == "sdk" {
		return dialSDK(ctx, w, token, device, i)
	}
	return dialRaw(ctx, w, token, device, i)
}

// pace offers this worker's rate from startNs to endNs, round-robin over the connections.
func (w *worker) pace(ctx context.Context, startNs, endNs int64) {
	if len(w.conns) == 0 {
		sleepUntil(ctx, w.base.Add(time.Duration(endNs)))
		return
	}
	interval := float64(time.Second) / w.rate
	next := 0
	for k := int64(0); ; k++ {
		due := startNs + int64(float64(k)*interval)
		if due >= endNs {
			return
		}
		if d := due - w.now(); d > 0 {
			// Timers are coarse: sleep only when the next request is worth it; requests due
			// meanwhile go out back to back with their own due times.
			if d > int64(200*time.Microsecond) {
				if !sleepUntil(ctx, w.base.Add(time.Duration(due))) {
					return
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		now := w.now()
		w.lag.record(now - due)
		w.conns[next].request(now)
		next = (next + 1) % len(w.conns)
		if now >= w.measureFrom.Load() {
			w.sent.Add(1)
		}
		w.totalSent.Add(1)
	}
}

// heartbeat pings every connection once per heartbeat interval, spread over the interval
// (the gateway advertises 30s by default; a bench shorter than that sends none).
func (w *worker) heartbeat(ctx context.Context) {
	const every = 30 * time.Second
	const batches = 300
	if len(w.conns) == 0 {
		return
	}
	t := time.NewTicker(every / batches)
	defer t.Stop()
	per := (len(w.conns) + batches - 1) / batches
	for i := 0; ; {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		for range per {
			w.conns[i].ping()
			w.pings.Add(1)
			i = (i + 1) % len(w.conns)
		}
	}
}

// drain waits up to -timeout for the outstanding responses; the rest count as no_response.
func (w *worker) drain(ctx context.Context) {
	deadline := time.Now().Add(w.cfg.Timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		pending := 0
		for _, c := range w.conns {
			pending += c.outstanding()
		}
		if pending == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closeAll closes every connection with SO_LINGER 0: no TIME_WAIT is left holding the source
// ports, so benches can follow each other.
func (w *worker) closeAll() {
	w.closing.Store(true)
	for _, c := range w.conns {
		c.abandon("no_response")
	}
}

// checkEncoding makes sure the hand-assembled REQUEST frames decode as intended.
func (w *worker) checkEncoding() error {
	frame := appendRequest(nil, w.reqs, 1<<40+7)
	f, err := protocol.Decode(newSliceReader(frame), math.MaxInt32)
	if err != nil {
		return fmt.Errorf("bench: request frame does not decode: %w", err)
	}
	r := f.GetRequest()
	if f.Seq != 1<<40+7 || r == nil || r.Service != w.cfg.Service || len(r.Payload) != w.cfg.Payload {
		return errors.New("bench: request frame decodes to something else")
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Raw driver.

type rawConn struct {
	w  *worker
	nc net.Conn

	wmu     sync.Mutex // guards seq, scratch and writes
	seq     uint64
	scratch []byte

	mu      sync.Mutex // guards pending, dead
	pending map[uint64]int64
	dead    bool
}

func dialRaw(ctx context.Context, w *worker, token, device string, i int) (*rawConn, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	nc, err := w.dialer(i).DialContext(ctx, "tcp", w.cfg.Addr)
	if err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline()
	_ = nc.SetDeadline(dl)
	if w.cfg.TLS != nil {
		tc := tls.Client(nc, w.cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	hs, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{
		ProtocolVersion: w.cfg.ProtocolVersion, Token: token, DeviceId: device, ClientVersion: "tcpgwctl-bench",
	}}}, w.cfg.MaxFrame)
	if err == nil {
		_, err = nc.Write(hs)
	}
	r := bufio.NewReaderSize(nc, 4096)
	var f *pb.Frame
	if err == nil {
		f, _, err = protocol.Read(r, w.cfg.MaxFrame, nil)
	}
	if err == nil && f.GetHandshakeAck() == nil {
		if e := f.GetError(); e != nil {
			err = &client.ServerError{Code: e.Code, Message: e.Message}
		} else {
			err = fmt.Errorf("expected HANDSHAKE_ACK, got %s", protocol.Kind(f))
		}
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	c := &rawConn{w: w, nc: nc, pending: map[uint64]int64{}}
	go c.readLoop(r)
	return c, nil
}

// appendRequest appends a length-prefixed Frame{seq, request}: protobuf fields concatenate,
// so the seq field followed by the pre-encoded request field is the whole frame body.
func appendRequest(dst, reqField []byte, seq uint64) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = protowire.AppendTag(dst, 1, protowire.VarintType)
	dst = protowire.AppendVarint(dst, seq)
	dst = append(dst, reqField...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-protocol.HeaderLen))
	return dst
}

func (c *rawConn) request(sent int64) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.seq++
	seq := c.seq
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		if sent >= c.w.measureFrom.Load() {
			c.w.failLocal("connection_lost", 1)
		}
		return
	}
	c.pending[seq] = sent
	c.mu.Unlock()
	c.scratch = appendRequest(c.scratch[:0], c.w.reqs, seq)
	if _, err := c.nc.Write(c.scratch); err != nil {
		c.fail("send_failed")
	}
}

func (c *rawConn) ping() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.seq++
	b, _ := protocol.Append(c.scratch[:0], &pb.Frame{Seq: c.seq, Body: &pb.Frame_Ping{Ping: &pb.Ping{ClientTimeMs: time.Now().UnixMilli()}}}, c.w.cfg.MaxFrame)
	c.scratch = b
	if _, err := c.nc.Write(b); err != nil {
		c.fail("send_failed")
	}
}

func (c *rawConn) outstanding() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// fail marks the connection dead, counting its outstanding requests as failed for reason.
func (c *rawConn) fail(reason string) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	var measured int64
	from := c.w.measureFrom.Load()
	for _, sent := range c.pending {
		if sent >= from {
			measured++
		}
	}
	clear(c.pending)
	c.mu.Unlock()
	if measured > 0 {
		c.w.failLocal(reason, measured)
	}
	if !c.w.closing.Load() {
		c.w.lost.Add(1)
	}
	nc := c.nc
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.nc.Close()
}

func (c *rawConn) abandon(reason string) { c.fail(reason) }

func (c *rawConn) readLoop(r *bufio.Reader) {
	var buf []byte
	for {
		head, err := r.Peek(protocol.HeaderLen)
		if err != nil {
			c.fail("connection_lost")
			return
		}
		n := int(binary.BigEndian.Uint32(head))
		if n == 0 || n > c.w.cfg.MaxFrame {
			c.fail("bad_frame")
			return
		}
		_, _ = r.Discard(protocol.HeaderLen)
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			c.fail("connection_lost")
			return
		}
		seq, kind, code, ok := parseFrame(buf[:n])
		if !ok {
			c.fail("bad_frame")
			return
		}
		switch kind {
		case fieldResponse:
			c.mu.Lock()
			sent, found := c.pending[seq]
			delete(c.pending, seq)
			c.mu.Unlock()
			if found {
				c.w.complete(sent, code)
			}
		case fieldPong:
			c.w.pongs.Add(1)
		case fieldGoAway:
			c.fail("goaway")
			return
		case fieldError:
			c.fail(protocol.Reason(code))
			return
		}
	}
}

// Frame body field numbers (proto/tcpgateway/v1/protocol.proto).
const (
	fieldSeq      = 1
	fieldPong     = 13
	fieldResponse = 15
	fieldGoAway   = 19
	fieldError    = 20
)

// parseFrame reads what the bench needs from a frame body without building messages: seq, the
// body's field number and, for RESPONSE and ERROR, the code (their field 1).
func parseFrame(b []byte) (seq uint64, kind protowire.Number, code pb.ErrorCode, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, 0, false
		}
		b = b[n:]
		switch {
		case num == fieldSeq && typ == protowire.VarintType:
			seq, n = protowire.ConsumeVarint(b)
		case typ == protowire.BytesType && num >= 10:
			var body []byte
			body, n = protowire.ConsumeBytes(b)
			kind = num
			if num == fieldResponse || num == fieldError {
				code = firstVarint(body)
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return 0, 0, 0, false
		}
		b = b[n:]
	}
	return seq, kind, code, kind != 0
}

// firstVarint returns field 1 of a message when it is a varint (ErrorCode), else 0.
func firstVarint(b []byte) pb.ErrorCode {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0
		}
		b = b[n:]
		if num == 1 && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0
			}
			return pb.ErrorCode(v)
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return 0
		}
		b = b[n:]
	}
	return 0
}

// sliceReader is a protocol.Reader over a byte slice, to check frames we assemble by hand.
type sliceReader struct{ b []byte }

func newSliceReader(b []byte) *sliceReader { return &sliceReader{b} }
func (r *sliceReader) Len() int            { return len(r.b) }
func (r *sliceReader) Peek(n int) ([]byte, error) {
	if n > len(r.b) {
		return nil, io.ErrUnexpectedEOF
	}
	return r.b[:n], nil
}
func (r *sliceReader) Skip(n int) error { _, err := r.Next(n); return err }
func (r *sliceReader) Next(n int) ([]byte, error) {
	p, err := r.Peek(n)
	if err == nil {
		r.b = r.b[n:]
	}
	return p, err
}

// ---------------------------------------------------------------------------------------
// SDK driver.

type sdkConn struct {
	w       *worker
	cl      *client.Client
	payload []byte
	ctx     context.Context
	cancel  context.CancelFunc
	pending atomic.Int64
}

func dialSDK(ctx context.Context, w *worker, token, device string, i int) (*sdkConn, error) {
	c := &sdkConn{w: w, payload: payloadOf(w.cfg.Payload)}
	cl, err := client.Connect(ctx, client.Options{
		Addr: w.cfg.Addr, Token: token, DeviceID: device, ClientVersion: "tcpgwctl-bench",
		Dialer: w.dialer(i), TLS: w.cfg.TLS, MaxFrameBytes: w.cfg.MaxFrame, HandshakeTimeout: w.cfg.Timeout,
		NoReconnect: true,
		OnDisconnect: func(error) {
			if !w.closing.Load() {
				w.lost.Add(1)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	c.cl = cl
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

func (c *sdkConn) request(sent int64) {
	c.pending.Add(1)
	go func() {
		defer c.pending.Add(-1)
		ctx, cancel := context.WithTimeout(c.ctx, c.w.cfg.Timeout+c.w.cfg.Warmup+c.w.cfg.Duration)
		defer cancel()
		resp, err := c.cl.Request(ctx, c.w.cfg.Service, c.w.cfg.Method, c.payload)
		if err != nil {
			if sent >= c.w.measureFrom.Load() {
				reason := "connection_lost"
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					reason = "no_response"
				}
				c.w.failLocal(reason, 1)
			}
			return
		}
		c.w.complete(sent, resp.Code)
	}()
}

func (c *sdkConn) ping() {
	go func() {
		ctx, cancel := context.WithTimeout(c.ctx, c.w.cfg.Timeout)
		defer cancel()
		if _, err := c.cl.Ping(ctx); err == nil {
			c.w.pongs.Add(1)
		}
	}()
}

func (c *sdkConn) outstanding() int { return int(c.pending.Load()) }

func (c *sdkConn) abandon(string) {
	c.cancel() // outstanding calls end as no_response
	_ = c.cl.Close()
}

// ---------------------------------------------------------------------------------------
// Results.

// benchResult is one worker's or the merged outcome. Latencies are in microseconds.
type benchResult struct {
	Driver          string           `json:"driver"`
	Procs           int              `json:"procs"`
	Conns           int              `json:"conns"`
	Established     int              `json:"established"`
	ConnectFailed   map[string]int   `json:"connectFailed,omitempty"`
	ConnectSeconds  float64          `json:"connectSeconds"`
	Lost            int64            `json:"connectionsLost"`
	OfferedRate     float64          `json:"offeredRate"`
	Payload         int              `json:"payload"`
	WarmupSeconds   float64          `json:"warmupSeconds"`
	DurationSeconds float64          `json:"durationSeconds"`
	Sent            int64            `json:"sent"`
	OK              int64            `json:"ok"`
	Failed          map[string]int64 `json:"failed,omitempty"`
	TotalSent       int64            `json:"totalSent"`
	TotalResponses  int64            `json:"totalResponses"`
	Pings           int64            `json:"pings"`
	Pongs           int64            `json:"pongs"`
	Throughput      float64          `json:"throughput"`
	Latency         latencySummary   `json:"latencyUs"`
	// SendLag is how late requests left the load tool after their due time (not part of
	// Latency); a large one means the tool was short of CPU and the offered rate is suspect.
	SendLag latencySummary `json:"sendLagUs"`
	// ToolCPUSeconds and ToolMaxRSSKiB are the load generator's own cost (all processes),
	// to check it was not the bottleneck.
	ToolCPUSeconds float64 `json:"toolCpuSeconds"`
	ToolMaxRSSKiB  int64   `json:"toolMaxRssKiB"`
	// Hist and LagHist carry the histograms from child processes to the parent (HdrHistogram
	// compressed encoding).
	Hist    string `json:"hist,omitempty"`
	LagHist string `json:"lagHist,omitempty"`

	// hist and lag are the merged histograms (in the parent).
	hist, lag *latencies
}

type latencySummary struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func (w *worker) snapshotConnections() *benchResult {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	r := &benchResult{Conns: w.hi - w.lo, Established: len(w.conns), ConnectFailed: map[string]int{}}
	for k, v := range w.connectFail {
		r.ConnectFailed[k] = v
	}
	return r
}

func (w *worker) snapshot() *benchResult {
	r := w.snapshotConnections()
	r.Lost = w.lost.Load()
	r.Sent, r.OK = w.sent.Load(), w.ok.Load()
	r.TotalSent, r.TotalResponses = w.totalSent.Load(), w.responses.Load()
	r.Pings, r.Pongs = w.pings.Load(), w.pongs.Load()
	r.Failed = map[string]int64{}
	for code := range w.codes {
		if n := w.codes[code].Load(); n > 0 {
			r.Failed[protocol.Reason(pb.ErrorCode(code))] += n
		}
	}
	w.local.Range(func(k, v any) bool {
		if n := v.(*atomic.Int64).Load(); n > 0 {
			r.Failed[k.(string)] += n
		}
		return true
	})
	r.Hist, r.LagHist = w.hist.encode(), w.lag.encode()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		r.ToolCPUSeconds = tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
		r.ToolMaxRSSKiB = ru.Maxrss
	}
	return r
}

func tvSeconds(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

func (r *benchResult) mergeConnections(o *benchResult) {
	r.Conns += o.Conns
	r.Established += o.Established
	for k, v := range o.ConnectFailed {
		if r.ConnectFailed == nil {
			r.ConnectFailed = map[string]int{}
		}
		r.ConnectFailed[k] += v
	}
}

func (r *benchResult) merge(o *benchResult) error {
	r.Lost += o.Lost
	r.Sent += o.Sent
	r.OK += o.OK
	r.TotalSent += o.TotalSent
	r.TotalResponses += o.TotalResponses
	r.Pings += o.Pings
	r.Pongs += o.Pongs
	for k, v := range o.Failed {
		if r.Failed == nil {
			r.Failed = map[string]int64{}
		}
		r.Failed[k] += v
	}
	if r.hist == nil {
		r.hist, r.lag = newLatencies(), newLatencies()
	}
	r.ToolCPUSeconds += o.ToolCPUSeconds
	r.ToolMaxRSSKiB = max(r.ToolMaxRSSKiB, o.ToolMaxRSSKiB)
	return errors.Join(r.hist.mergeEncoded(o.Hist), r.lag.mergeEncoded(o.LagHist))
}

func (r *benchResult) finish(cfg *benchConfig) {
	r.Driver, r.Procs = cfg.Driver, cfg.Procs
	r.OfferedRate, r.Payload = cfg.Rate, cfg.Payload
	r.WarmupSeconds, r.DurationSeconds = cfg.Warmup.Seconds(), cfg.Duration.Seconds()
	r.Throughput = float64(r.OK) / cfg.Duration.Seconds()
	if r.hist != nil {
		r.Latency, r.SendLag = r.hist.summary(), r.lag.summary()
	}
	r.Hist, r.LagHist = "", ""
	if len(r.Failed) == 0 {
		r.Failed = nil
	}
	if len(r.ConnectFailed) == 0 {
		r.ConnectFailed = nil
	}
}

func (r *benchResult) print(out io.Writer) {
	failed := r.Conns - r.Established
	fmt.Fprintf(out, "connections  %d established, %d failed%s in %.1fs; %d lost during the run\n",
		r.Established, failed, countsText(r.ConnectFailed), r.ConnectSeconds, r.Lost)
	if r.OfferedRate == 0 {
		fmt.Fprintf(out, "idle         held %.0fs; heartbeats %d sent, %d answered\n", r.WarmupSeconds+r.DurationSeconds, r.Pings, r.Pongs)
	} else {
		var nFailed int64
		for _, v := range r.Failed {
			nFailed += v
		}
		fmt.Fprintf(out, "requests     %d sent, %d ok, %d failed%s (measured %.0fs after %.0fs warm-up; %d B payload)\n",
			r.Sent, r.OK, nFailed, countsText(r.Failed), r.DurationSeconds, r.WarmupSeconds, r.Payload)
		fmt.Fprintf(out, "throughput   %.1f req/s ok (offered %.0f/s)\n", r.Throughput, r.OfferedRate)
		l := r.Latency
		fmt.Fprintf(out, "latency      p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s\n",
			us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max), us(l.Mean))
		l = r.SendLag
		fmt.Fprintf(out, "send lag     p50 %s  p99 %s  max %s (not in the latency)\n", us(l.P50), us(l.P99), us(l.Max))
	}
	fmt.Fprintf(out, "load tool    %.1fs CPU, max RSS %.0f MiB per process (%d process(es), %s driver)\n",
		r.ToolCPUSeconds, float64(r.ToolMaxRSSKiB)/1024, r.Procs, r.Driver)
}

func countsText[V int | int64](m map[string]V) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func us(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.2fms", v/1e3)
	default:
		return fmt.Sprintf("%.0fµs", v)
	}
}

// classify names a connection failure for the report.
func classify(err error) string {
	var se *client.ServerError
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	switch {
	case errors.As(err, &se):
		return protocol.Reason(se.Code)
	case errors.As(err, &verify), errors.As(err, &header):
		return "tls"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return "no_source_port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too_many_open_files"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "other"
	}
}

// ---------------------------------------------------------------------------------------
// Latency histograms: HdrHistogram over microseconds, 1 µs to 60 s with 3 significant digits,
// shared by the reader goroutines under a mutex, and shipped from child processes to the parent
// in HdrHistogram's compressed encoding.

const maxLatencyUs = 60_000_000

type latencies struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newLatencies() *latencies {
	return &latencies{h: hdrhistogram.New(1, maxLatencyUs, 3)}
}

func (l *latencies) record(ns int64) {
	us := min(max(ns/1000, 1), maxLatencyUs)
	l.mu.Lock()
	_ = l.h.RecordValue(us)
	l.mu.Unlock()
}

// encode returns the histogram in HdrHistogram's V2 compressed base64 form.
func (l *latencies) encode() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, err := l.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return ""
	}
	return string(b)
}

// mergeEncoded adds an encoded histogram (a child's).
func (l *latencies) mergeEncoded(enc string) error {
	if enc == "" {
		return nil
	}
	h, err := hdrhistogram.Decode([]byte(enc))
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.h.Merge(h)
	return nil
}

func (l *latencies) summary() latencySummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h.TotalCount() == 0 {
		return latencySummary{}
	}
	q := func(p float64) float64 { return float64(l.h.ValueAtQuantile(p)) }
	return latencySummary{P50: q(50), P90: q(90), P99: q(99), P999: q(99.9),
		Max: float64(l.h.Max()), Mean: l.h.Mean()}
}
