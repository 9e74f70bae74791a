package lb

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/tcpgateway/tcpgateway/test/wait"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ioTimeout bounds every client read/write so a broken proxy fails a test instead of
// hanging it.
const ioTimeout = 20 * time.Second

// echoServer is a backend that greets each connection with its name (so a client can
// tell which backend the LB chose), then echoes, and half-closes after the client does.
type echoServer struct {
	name string
	ln   net.Listener
	wg   sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	once   sync.Once
}

func startEcho(t *testing.T, name string) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{name: name, ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Go(s.acceptLoop)
	t.Cleanup(s.close)
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

func (s *echoServer) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // listener closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Go(func() { s.serve(c) })
		s.mu.Unlock()
	}
}

func (s *echoServer) serve(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	if _, err := io.WriteString(c, s.name+"\n"); err != nil {
		return
	}
	// Buffered copy, not io.Copy(c, c): that would splice and pin a pipe (2 fds) per idle
	// connection, and the 2000-connection test has no fds to spare for it.
	if _, err := io.CopyBuffer(writerOnly{c}, readerOnly{c}, make([]byte, 4<<10)); err != nil {
		return
	}
	_ = c.(*net.TCPConn).CloseWrite()
	// Wait for the peer to close so the half-closed direction is observable.
	_, _ = io.Copy(io.Discard, c)
}

// close kills the backend: the listener goes (new dials are refused) and every
// connection is closed, like a killed pod.
func (s *echoServer) close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.ln.Close()
		s.wg.Wait()
	})
}

// client is one connection through the LB, with the name of the backend it reached.
type client struct {
	c       net.Conn
	r       *bufio.Reader
	backend string
}

func dialClient(addr string) (*client, error) {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	r := bufio.NewReader(c)
	greeting, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("reading greeting: %w", err)
	}
	return &client{c: c, r: r, backend: strings.TrimSuffix(greeting, "\n")}, nil
}

func (c *client) echo(msg string) error {
	if _, err := io.WriteString(c.c, msg+"\n"); err != nil {
		return err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading echo of %q: %w", msg, err)
	}
	if got != msg+"\n" {
		return fmt.Errorf("echo = %q, want %q", got, msg+"\n")
	}
	return nil
}

func mustDial(t *testing.T, lb *LB) *client {
	t.Helper()
	c, err := dialClient(lb.Addr())
	if err != nil {
		t.Fatalf("dial through LB: %v", err)
	}
	t.Cleanup(func() { c.c.Close() })
	return c
}

func mustEcho(t *testing.T, c *client, msg string) {
	t.Helper()
	if err := c.echo(msg); err != nil {
		t.Fatalf("via %s: %v", c.backend, err)
	}
}

func newLB(t *testing.T, opts Options, backends ...*echoServer) *LB {
	t.Helper()
	lb, err := New("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lb.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for _, b := range backends {
		lb.Add(b.addr())
	}
	return lb
}

// eventually polls cond: the LB's counters change asynchronously after a peer closes and
// offer no event to wait on.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	wait.For(t, timeout, what, cond)
}

// expectClosed asserts that the peer closed c: a read ends with EOF or a reset, not
// with data or a timeout.
func expectClosed(t *testing.T, c net.Conn, r io.Reader) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	n, err := r.Read(make([]byte, 1))
	if n != 0 || err == nil {
		t.Fatalf("read %d bytes, err %v; want connection closed", n, err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %v", ioTimeout)
	}
}

func TestSpreadsLeastConnections(t *testing.T) {
	b := []*echoServer{startEcho(t, "b0"), startEcho(t, "b1"), startEcho(t, "b2")}
	lb := newLB(t, Options{}, b...)

	counts := map[string]int{}
	held := map[string][]*client{}
	for i := range 30 {
		c := mustDial(t, lb)
		mustEcho(t, c, fmt.Sprint("msg", i))
		counts[c.backend]++
		held[c.backend] = append(held[c.backend], c)
	}
	lo, hi := 1<<30, 0
	for _, s := range b {
		lo, hi = min(lo, counts[s.name]), max(hi, counts[s.name])
	}
	if hi-lo > 1 {
		t.Fatalf("uneven spread %v: max-min = %d, want <= 1", counts, hi-lo)
	}
	st := lb.Stats()
	for _, s := range b {
		bs := st.Backends[s.addr()]
		if bs.Accepted != uint64(counts[s.name]) || bs.Active != counts[s.name] {
			t.Errorf("%s stats %+v, want accepted=active=%d", s.name, bs, counts[s.name])
		}
	}

	// Least connections, not plain rotation: once b0's clients leave, every new
	// connection goes to b0 until it has caught up with the others.
	n0 := len(held["b0"])
	for _, c := range held["b0"] {
		c.c.Close()
	}
	eventually(t, 5*time.Second, "b0 to have no active connections", func() bool {
		return lb.Stats().Backends[b[0].addr()].Active == 0
	})
	for i := range n0 {
		if c := mustDial(t, lb); c.backend != "b0" {
			t.Fatalf("reconnect %d went to %s, want the emptied b0", i, c.backend)
		}
	}
}

func TestRoundRobinTieBreak(t *testing.T) {
	b := []*echoServer{startEcho(t, "b0"), startEcho(t, "b1"), startEcho(t, "b2")}
	lb := newLB(t, Options{}, b...)

	// Each connection is closed (and seen closed by the LB) before the next, so all
	// backends are always tied at zero and only the tie-break decides.
	var got []string
	for range 6 {
		c := mustDial(t, lb)
		got = append(got, c.backend)
		c.c.Close()
		eventually(t, 5*time.Second, "LB to see the connection closed", func() bool {
			for _, bs := range lb.Stats().Backends {
				if bs.Active != 0 {
					return false
				}
			}
			return true
		})
	}
	for i := 3; i < len(got); i++ {
		if got[i] != got[i-3] {
			t.Fatalf("backends %v do not rotate with period 3", got)
		}
	}
	if distinct := len(slices.Compact(slices.Sorted(slices.Values(got[:3])))); distinct != 3 {
		t.Fatalf("first three connections %v did not use every backend", got[:3])
	}
}

func TestRemoveHonoursDeregistrationDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	a, bb := startEcho(t, "a"), startEcho(t, "b")
	lb := newLB(t, Options{DeregistrationDelay: delay}, a)
	old := mustDial(t, lb) // the only backend, so it lands on a
	if old.backend != "a" {
		t.Fatalf("first connection reached %s, want a", old.backend)
	}
	lb.Add(bb.addr())

	removedAt := time.Now()
	lb.Remove(a.addr())
	if !slices.Contains(lb.Backends(), a.addr()) {
		t.Fatalf("Backends() = %v dropped a before the deregistration delay", lb.Backends())
	}
	// Least connections balances a (1 old connection) against b, so four new
	// connections put at least one more on a while it is still registered.
	var during []*client
	for range 4 {
		during = append(during, mustDial(t, lb))
	}
	if elapsed := time.Since(removedAt); elapsed >= delay {
		t.Fatalf("connecting took %v, longer than the %v delay under test; cannot judge", elapsed, delay)
	}
	reached := 0
	for _, c := range during {
		if c.backend == "a" {
			reached++
		}
	}
	if reached == 0 {
		t.Fatalf("no new connection reached a during its deregistration delay")
	}

	eventually(t, 10*delay, "a to leave Backends()", func() bool {
		return !slices.Contains(lb.Backends(), a.addr())
	})
	if elapsed := time.Since(removedAt); elapsed < delay {
		t.Fatalf("a deregistered after %v, before the %v delay", elapsed, delay)
	}
	for i := range 20 {
		if c := mustDial(t, lb); c.backend != "b" {
			t.Fatalf("connection %d after deregistration reached %s", i, c.backend)
		}
	}

	// The LB never cuts connections to a deregistered backend.
	mustEcho(t, old, "still here")
	for i, c := range during {
		mustEcho(t, c, fmt.Sprint("during", i))
	}
	st := lb.Stats().Backends[a.addr()]
	if st.Eligible || st.Active != 1+reached {
		t.Fatalf("a stats %+v, want ineligible with %d active", st, 1+reached)
	}

	// Only the backend ends them, as a draining pod would; the clients see the close and
	// hang up, which releases the LB's side.
	a.close()
	for _, c := range append(during, old) {
		if c.backend == "a" {
			expectClosed(t, c.c, c.r)
			c.c.Close()
		}
	}
	eventually(t, 5*time.Second, "a's connections to be released", func() bool {
		return lb.Stats().Backends[a.addr()].Active == 0
	})
}

func TestAddCancelsPendingRemoval(t *testing.T) {
	a := startEcho(t, "a")
	lb := newLB(t, Options{DeregistrationDelay: time.Hour}, a)
	lb.Remove(a.addr())
	lb.Add(a.addr())
	lb.Remove(a.addr()) // a fresh removal with the hour-long delay: still eligible
	if got := lb.Backends(); !slices.Equal(got, []string{a.addr()}) {
		t.Fatalf("Backends() = %v, want [%s]", got, a.addr())
	}

	lb2 := newLB(t, Options{}, a) // zero delay deregisters at once
	lb2.Remove(a.addr())
	if got := lb2.Backends(); len(got) != 0 {
		t.Fatalf("Backends() = %v after Remove with no delay, want none", got)
	}
	lb2.Add(a.addr())
	if c := mustDial(t, lb2); c.backend != "a" {
		t.Fatalf("re-added backend not used: reached %s", c.backend)
	}
}

func TestDeadBackendIsSkipped(t *testing.T) {
	alive0, alive1, dead := startEcho(t, "alive0"), startEcho(t, "alive1"), startEcho(t, "dead")
	dead.close() // a killed pod: its port now refuses connections
	lb := newLB(t, Options{}, dead, alive0, alive1)

	for i := range 10 {
		c := mustDial(t, lb)
		if c.backend == "dead" {
			t.Fatal("reached the dead backend")
		}
		mustEcho(t, c, fmt.Sprint("msg", i))
	}
	st := lb.Stats()
	if st.Backends[dead.addr()].DialFailures == 0 {
		t.Errorf("dead backend stats %+v: it was never tried, so skipping is untested", st.Backends[dead.addr()])
	}
	if st.Refused != 0 {
		t.Errorf("Refused = %d, want 0", st.Refused)
	}

	// When every backend is dead the client is closed and counted as refused.
	alive0.close()
	alive1.close()
	c, err := net.DialTimeout("tcp", lb.Addr(), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectClosed(t, c, c)
	if got := lb.Stats(); got.Refused != 1 {
		t.Fatalf("Refused = %d, want 1; stats %+v", got.Refused, got)
	}
}

func TestNoBackendsRefuses(t *testing.T) {
	lb := newLB(t, Options{})
	c, err := net.DialTimeout("tcp", lb.Addr(), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectClosed(t, c, c)
	// The LB counts the refusal before closing the client, so it is visible now.
	if got := lb.Stats().Refused; got != 1 {
		t.Fatalf("Refused = %d, want 1", got)
	}
}

func TestHalfClose(t *testing.T) {
	lb := newLB(t, Options{}, startEcho(t, "b0"))
	c := mustDial(t, lb)
	if _, err := io.WriteString(c.c, "last words"); err != nil {
		t.Fatal(err)
	}
	// The client stops sending; the backend must see EOF through the LB, finish echoing,
	// and half-close in turn, while the client can still read.
	if err := c.c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(c.r)
	if err != nil {
		t.Fatalf("reading after half-close: %v", err)
	}
	if string(rest) != "last words" {
		t.Fatalf("got %q after half-close, want %q", rest, "last words")
	}
}

func TestBackendResetClosesClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.(*net.TCPConn).SetLinger(0) // close with RST
		c.Close()
	}()
	lb := newLB(t, Options{})
	lb.Add(ln.Addr().String())

	c, err := net.DialTimeout("tcp", lb.Addr(), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectClosed(t, c, c)
	<-accepted
	eventually(t, 5*time.Second, "the connection to be released", func() bool {
		return lb.Stats().Backends[ln.Addr().String()].Active == 0
	})
}

func TestCloseReleasesEverything(t *testing.T) {
	before := runtime.NumGoroutine()

	b0, b1 := startEcho(t, "b0"), startEcho(t, "b1")
	lb, err := New("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	lb.Add(b0.addr())
	lb.Add(b1.addr())
	var clients []*client
	for i := range 20 {
		c := mustDial(t, lb)
		mustEcho(t, c, fmt.Sprint("msg", i))
		clients = append(clients, c)
	}

	// Close must return on its own: it closes the proxied connections rather than
	// waiting for peers to hang up.
	closed := make(chan error, 1)
	go func() { closed <- lb.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatalf("Close did not return within %v with clients still connected", ioTimeout)
	}
	if err := lb.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, c := range clients {
		expectClosed(t, c.c, c.r)
	}
	if c, err := net.DialTimeout("tcp", lb.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("LB still accepts connections after Close")
	}
	for addr, bs := range lb.Stats().Backends {
		if bs.Active != 0 {
			t.Errorf("%s still has %d active connections after Close", addr, bs.Active)
		}
	}

	for _, c := range clients {
		c.c.Close()
	}
	b0.close()
	b1.close()
	// Close waited for the LB's goroutines; the bounded poll only covers runtime
	// bookkeeping of goroutines that have returned but not yet been reaped.
	eventually(t, 5*time.Second, fmt.Sprintf("goroutines to return to %d", before), func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// TestManyConcurrentConnections holds 2000 connections open through the LB at once and
// echoes 10 messages on each. In this one process every connection costs 4 fds (client,
// LB client side, LB backend side, echo server), 8000 in all, under the 20000 cap. Clients
// are multiplexed over a few workers because the race detector allows only 8128 live
// goroutines and the LB (2 per connection) and echo servers (1) already use 6000.
func TestManyConcurrentConnections(t *testing.T) {
	const (
		conns    = 2000
		workers  = 100
		perWork  = conns / workers
		messages = 10
	)
	b := []*echoServer{startEcho(t, "b0"), startEcho(t, "b1"), startEcho(t, "b2")}
	lb := newLB(t, Options{}, b...)

	var (
		connected sync.WaitGroup
		finished  sync.WaitGroup
		release   = make(chan struct{})
		errs      = make(chan error, workers)
	)
	connected.Add(workers)
	for w := range workers {
		finished.Go(func() {
			var cs []*client
			defer func() {
				for _, c := range cs {
					c.c.Close()
				}
			}()
			// Phase 1: open this worker's connections, one round trip each.
			err := func() error {
				for i := range perWork {
					c, err := dialClient(lb.Addr())
					if err != nil {
						return err
					}
					cs = append(cs, c)
					if err := c.echo(fmt.Sprintf("w%d-c%d-m0", w, i)); err != nil {
						return err
					}
				}
				return nil
			}()
			connected.Done()
			if err != nil {
				errs <- fmt.Errorf("worker %d connecting: %w", w, err)
				return
			}
			// Phase 2: once every worker is connected, echo the remaining messages.
			<-release
			for m := 1; m < messages; m++ {
				for i, c := range cs {
					if err := c.echo(fmt.Sprintf("w%d-c%d-m%d-%s", w, i, m, strings.Repeat("x", 64))); err != nil {
						errs <- fmt.Errorf("worker %d: %w", w, err)
						return
					}
				}
			}
		})
	}
	connected.Wait()

	// Every connection has completed a round trip and none has closed, so all 2000 are
	// proxied concurrently right now.
	st := lb.Stats()
	fds, fdErr := openFDs()
	total, lo, hi := 0, conns, 0
	for _, s := range b {
		n := st.Backends[s.addr()].Active
		total += n
		lo, hi = min(lo, n), max(hi, n)
	}
	close(release)
	finished.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if total != conns {
		t.Fatalf("%d connections active at once, want %d", total, conns)
	}
	if hi-lo > 1 {
		t.Errorf("active connections per backend range %d..%d, want max-min <= 1", lo, hi)
	}
	if st.Refused != 0 {
		t.Errorf("Refused = %d, want 0", st.Refused)
	}
	// 4 fds per connection in this process (see above), plus slack for the runtime and
	// the test binary. Splicing would add 4 pipe fds per connection in the LB alone.
	switch {
	case fdErr != nil:
		t.Logf("fd budget not checked: %v", fdErr)
	default:
		t.Logf("%d open fds with %d connections proxied", fds, conns)
		if fds > 4*conns+200 {
			t.Errorf("%d open fds with %d connections, want <= %d: the LB costs more than 2 fds per connection", fds, conns, 4*conns+200)
		}
	}
}

// openFDs counts this process's open file descriptors (Linux /proc).
func openFDs() (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	return len(ents), err
}

// Random ignores load: a backend added to three that hold 50 connections each gets only its
// share of the next ones, where least connections (TestSpreadsLeastConnections) would send it
// every one until it caught up.
func TestRandomIgnoresLoad(t *testing.T) {
	b := []*echoServer{startEcho(t, "b0"), startEcho(t, "b1"), startEcho(t, "b2")}
	lb := newLB(t, Options{Balance: Random}, b...)
	for i := range 150 { // held open (closed at cleanup): the load b3 does not see
		mustEcho(t, mustDial(t, lb), fmt.Sprint("msg", i))
	}
	fresh := startEcho(t, "b3")
	lb.Add(fresh.addr())
	counts := map[string]int{}
	for i := range 40 {
		c := mustDial(t, lb)
		mustEcho(t, c, fmt.Sprint("next", i))
		counts[c.backend]++
	}
	// b3's count is Binomial(40, 1/4): mean 10, sd 2.7. Least connections gives it all 40;
	// 25 or more is 5.5 sd above the mean (odds below 1e-7).
	if counts["b3"] >= 25 {
		t.Errorf("the new backend got %d of 40 connections: %v, want about a quarter", counts["b3"], counts)
	}
	if counts["b3"] == 0 {
		t.Errorf("the new backend got none of 40 connections: %v", counts)
	}
}
