// Package lb is a small in-process TCP load balancer for tests. It stands in for a cloud
// LoadBalancer (an NLB-style layer-4 balancer) in front of several gateway processes, so
// drain/resume tests can observe what real clients see when pods are removed, killed or
// re-added: a deregistration delay before a removed target stops getting new connections,
// connections that are never cut by the balancer itself, and reconnects that are spread
// by least outstanding connections (or at random, like balancers that hash each connection).
//
// It is not meant for production. It does no health checking: a dead backend stays in
// the rotation until Removed, and every connection that picks it pays one refused dial
// before moving on (loopback refuses at once). It keeps statistics for every backend it
// has ever seen.
package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"
)

// DefaultDialTimeout bounds a dial to one backend. A killed pod on loopback refuses at
// once; the timeout only matters for a backend that black-holes SYNs.
const DefaultDialTimeout = 2 * time.Second

// Options configure an LB. The zero value is usable.
type Options struct {
	// DeregistrationDelay is how long a backend keeps receiving NEW connections after
	// Remove: cloud load balancers notice a removed or unhealthy target only after a
	// while, and drain tests must survive that window. Connections already proxied to the
	// backend are never cut by the LB (like an NLB with connection draining): the backend
	// closes them itself.
	DeregistrationDelay time.Duration
	// DialTimeout bounds each backend dial; zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// Logger receives add/remove and dial-failure events; nil discards them.
	Logger *slog.Logger
	// Balance is how a backend is chosen: LeastConnections (the default) or Random, which
	// stands in for the cloud balancers that hash each connection's addresses and ports (AWS
	// NLB, GCP and Azure): a reconnect, with a new source port, lands on any eligible backend
	// with equal chance, whatever its load (docs/operator.md#rebalance).
	Balance Balance
}

// Balance is a backend selection algorithm.
type Balance string

const (
	LeastConnections Balance = ""
	Random           Balance = "random"
)

// BackendStats describes one backend as the LB sees it.
type BackendStats struct {
	// Accepted counts connections successfully proxied to the backend, ever.
	Accepted uint64
	// Active counts proxied connections to the backend that are open now.
	Active int
	// DialFailures counts failed dials to the backend (each one was retried on another
	// backend if any was left).
	DialFailures uint64
	// Eligible reports whether the backend currently receives new connections.
	Eligible bool
}

// Stats is a snapshot of the LB's counters.
type Stats struct {
	// Backends holds every backend ever added, including deregistered ones, so that
	// tests can still see the connections they are draining.
	Backends map[string]BackendStats
	// Refused counts client connections closed because no backend could be dialed.
	Refused uint64
}

// backend is the LB's bookkeeping for one target; all fields are guarded by LB.mu.
type backend struct {
	addr         string
	pending      int // dials in flight; counted as load so concurrent accepts spread
	active       int // established proxied connections
	accepted     uint64
	dialFailures uint64
	removed      bool
	deregisterAt time.Time // valid when removed
}

// load is what least-connections compares: in-flight dials count too, otherwise a burst
// of simultaneous accepts would all pick the same backend before any dial finished.
func (b *backend) load() int { return b.pending + b.active }

// eligible is evaluated lazily against the clock instead of with timers, so a pending
// deregistration needs no goroutine and Add can cancel it by flipping a flag.
func (b *backend) eligible(now time.Time) bool {
	return !b.removed || now.Before(b.deregisterAt)
}

// LB accepts TCP connections and proxies each one to a backend.
type LB struct {
	ln     *net.TCPListener
	opts   Options
	log    *slog.Logger
	ctx    context.Context // cancelled by Close to abort in-flight dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop and every connection goroutine

	mu      sync.Mutex
	closed  bool
	byAddr  map[string]*backend
	order   []*backend // insertion order; the round-robin ring
	next    int        // ring index where the next tie-break search starts
	refused uint64
	conns   map[*net.TCPConn]struct{} // every open client and backend connection
}

// New listens on listenAddr (e.g. "127.0.0.1:0") and starts accepting. Call Close to
// release the listener and all proxied connections.
func New(listenAddr string, opts Options) (*LB, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, fmt.Errorf("lb: listen %s: %w", listenAddr, err)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lb := &LB{
		ln:     ln.(*net.TCPListener),
		opts:   opts,
		log:    log.With("lb", ln.Addr().String()),
		ctx:    ctx,
		cancel: cancel,
		byAddr: make(map[string]*backend),
		conns:  make(map[*net.TCPConn]struct{}),
	}
	lb.wg.Go(lb.acceptLoop)
	return lb, nil
}

// Addr is the address clients connect to.
func (lb *LB) Addr() string { return lb.ln.Addr().String() }

// Add makes backend (host:port) eligible at once. Adding a backend whose removal is
// still pending cancels the removal, as re-registering a target does on a cloud LB.
func (lb *LB) Add(backendAddr string) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if b, ok := lb.byAddr[backendAddr]; ok {
		b.removed = false
	} else {
		b = &backend{addr: backendAddr}
		lb.byAddr[backendAddr] = b
		lb.order = append(lb.order, b)
	}
	lb.log.Info("backend added", "backend", backendAddr)
}

// Remove deregisters backend after Options.DeregistrationDelay; until then it still
// receives new connections. Its existing connections are left alone. Removing an
// unknown or already removed backend does nothing (the first deadline stands).
func (lb *LB) Remove(backendAddr string) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	b, ok := lb.byAddr[backendAddr]
	if !ok || b.removed {
		return
	}
	b.removed = true
	b.deregisterAt = time.Now().Add(lb.opts.DeregistrationDelay)
	lb.log.Info("backend removed", "backend", backendAddr, "deregistration_delay", lb.opts.DeregistrationDelay)
}

// Backends lists the backends that currently receive new connections, in Add order.
func (lb *LB) Backends() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	now := time.Now()
	var out []string
	for _, b := range lb.order {
		if b.eligible(now) {
			out = append(out, b.addr)
		}
	}
	return out
}

// Stats returns a snapshot of the counters.
func (lb *LB) Stats() Stats {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	now := time.Now()
	s := Stats{Backends: make(map[string]BackendStats, len(lb.order)), Refused: lb.refused}
	for _, b := range lb.order {
		s.Backends[b.addr] = BackendStats{
			Accepted:     b.accepted,
			Active:       b.active,
			DialFailures: b.dialFailures,
			Eligible:     b.eligible(now),
		}
	}
	return s
}

// Close stops accepting, closes every client and backend connection, and waits for all
// of the LB's goroutines to return. Later calls return nil.
func (lb *LB) Close() error {
	lb.mu.Lock()
	if lb.closed {
		lb.mu.Unlock()
		return nil
	}
	lb.closed = true
	conns := make([]*net.TCPConn, 0, len(lb.conns))
	for c := range lb.conns {
		conns = append(conns, c)
	}
	lb.mu.Unlock()

	lb.cancel()
	err := lb.ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	lb.wg.Wait()
	return err
}

// acceptLoop runs until the listener is closed. Accept errors other than closure (e.g.
// EMFILE under a connection storm) are retried with a capped backoff rather than ending
// the loop, so a brief fd shortage does not silently kill the balancer mid-test.
func (lb *LB) acceptLoop() {
	const maxBackoff = time.Second
	var backoff time.Duration
	for {
		c, err := lb.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || lb.ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), maxBackoff)
			lb.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-lb.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = 0
		// Registering under mu with the closed check keeps wg.Add from racing Close's
		// wg.Wait and guarantees Close sees (and closes) every accepted connection.
		lb.mu.Lock()
		if lb.closed {
			lb.mu.Unlock()
			_ = c.Close()
			return
		}
		lb.conns[c] = struct{}{}
		lb.wg.Go(func() { lb.serve(c) })
		lb.mu.Unlock()
	}
}

// serve dials a backend for client and proxies until both directions are done.
func (lb *LB) serve(client *net.TCPConn) {
	b, server := lb.dialBackend()
	if server == nil {
		lb.mu.Lock()
		if !lb.closed {
			lb.refused++
		}
		delete(lb.conns, client)
		lb.mu.Unlock()
		_ = client.Close()
		return
	}
	defer func() {
		_ = client.Close()
		_ = server.Close()
		lb.mu.Lock()
		delete(lb.conns, client)
		delete(lb.conns, server)
		b.active--
		lb.mu.Unlock()
	}()
	// No lock is held while copying: the two directions run in their own goroutines and
	// only touch the connections.
	done := make(chan struct{})
	lb.wg.Go(func() {
		defer close(done)
		pipe(client, server)
	})
	pipe(server, client)
	<-done
}

// dialBackend tries eligible backends, least loaded first, each at most once. The loop is
// bounded by the number of backends because tried ones are never picked again. It
// returns a nil conn if none could be dialed or the LB is closing.
func (lb *LB) dialBackend() (*backend, *net.TCPConn) {
	d := net.Dialer{Timeout: lb.opts.DialTimeout}
	var tried []*backend
	for {
		b := lb.pick(tried)
		if b == nil {
			return nil, nil
		}
		tried = append(tried, b)
		c, err := d.DialContext(lb.ctx, "tcp", b.addr)
		lb.mu.Lock()
		b.pending--
		if err != nil {
			b.dialFailures++
			lb.mu.Unlock()
			if lb.ctx.Err() != nil {
				return nil, nil
			}
			// Debug, not Warn: a killed pod fails one dial per new connection, and a
			// reconnect storm would flood the test log; Stats().DialFailures counts them.
			lb.log.Debug("backend dial failed; trying next", "backend", b.addr, "err", err)
			continue
		}
		server := c.(*net.TCPConn)
		if lb.closed {
			lb.mu.Unlock()
			_ = server.Close()
			return nil, nil
		}
		b.active++
		b.accepted++
		lb.conns[server] = struct{}{}
		lb.mu.Unlock()
		return b, server
	}
}

// pick chooses the eligible, untried backend with the fewest connections, breaking ties
// round-robin (or, with Random, any eligible untried one), and reserves a slot on it (pending). Least connections mirrors a cloud
// LB's least-outstanding routing: after a drain, the reconnect storm lands on the pods
// with the fewest clients instead of piling onto whichever pod is next in a rotation, and
// a freshly added pod absorbs new connections until it catches up. The round-robin
// tie-break keeps equally loaded backends (e.g. all idle) evenly used.
func (lb *LB) pick(tried []*backend) *backend {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.closed {
		return nil
	}
	now := time.Now()
	n := len(lb.order)
	if lb.opts.Balance == Random {
		var eligible []*backend
		for _, b := range lb.order {
			if b.eligible(now) && !slices.Contains(tried, b) {
				eligible = append(eligible, b)
			}
		}
		if len(eligible) == 0 {
			return nil
		}
		b := eligible[rand.IntN(len(eligible))]
		b.pending++
		return b
	}
	best, bestIdx := (*backend)(nil), 0
	for i := range n {
		idx := (lb.next + i) % n
		b := lb.order[idx]
		if !b.eligible(now) || slices.Contains(tried, b) {
			continue
		}
		if best == nil || b.load() < best.load() {
			best, bestIdx = b, idx
		}
	}
	if best == nil {
		return nil
	}
	best.pending++
	lb.next = (bestIdx + 1) % n
	return best
}

// copyBufSize is the per-direction copy buffer. Small, because a test may hold thousands
// of mostly idle connections and each direction pins its buffer while blocked in Read.
const copyBufSize = 8 << 10

// readerOnly and writerOnly hide (*net.TCPConn).WriteTo/ReadFrom from io.CopyBuffer so
// it does not splice: Go's splice path holds a pipe (2 fds) for every direction blocked
// waiting for data, which would make an idle proxied connection cost 6 fds instead of 2
// and run a few thousand connections into the open-file cap.
type (
	readerOnly struct{ io.Reader }
	writerOnly struct{ io.Writer }
)

// pipe copies src to dst. On a clean EOF the write side of dst is shut down so the peer
// sees the half-close and may keep sending the other way; on any error both connections
// are closed, which also ends the opposite direction's copy.
func pipe(dst, src *net.TCPConn) {
	buf := make([]byte, copyBufSize)
	if _, err := io.CopyBuffer(writerOnly{dst}, readerOnly{src}, buf); err != nil {
		_ = src.Close()
		_ = dst.Close()
		return
	}
	if err := dst.CloseWrite(); err != nil {
		_ = src.Close()
		_ = dst.Close()
	}
}
