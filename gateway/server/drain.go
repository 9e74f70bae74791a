package server

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// drainTick is the pacing step: GOAWAYs go out in one batch per tick.
const drainTick = 50 * time.Millisecond

// maxReconnectJitter caps the random reconnect delay each client is given on top of the
// spreading of GOAWAYs over the window.
const maxReconnectJitter = time.Second

// DrainPhase names a step of the drain, for logs and the phase-duration metric.
type DrainPhase string

const (
	PhaseNotReady     DrainPhase = "not_ready"    // readiness fails; still accepting
	PhaseDeregistered DrainPhase = "deregistered" // deregistration delay over; new connections get GOAWAY
	PhaseGoAway       DrainPhase = "goaway"       // every session told to go away, paced over the window
	PhaseFlushed      DrainPhase = "flushed"      // in-flight requests answered, queues written
	PhaseClosed       DrainPhase = "closed"       // remaining connections closed
)

// Drain runs the graceful shutdown of the client side, phase by phase, reporting each phase's
// end to onPhase. The hard deadline (from its start) bounds it all: whatever remains then is
// closed. Call it once (the app guards it).
func (s *Server) Drain(ctx context.Context, d config.Drain, onPhase func(DrainPhase)) {
	start := s.now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(d.HardDeadline.Duration))
	defer cancel()
	report := func(p DrainPhase) {
		if onPhase != nil {
			onPhase(p)
		}
	}

	// 1. Readiness fails at once; the load balancer needs the deregistration delay to notice,
	// and connections arriving meanwhile are served normally.
	s.draining.Store(true)
	s.m.Draining.Set(1)
	s.stopRebalance() // the drain moves every session
	report(PhaseNotReady)
	sleep(ctx, d.DeregistrationDelay.Duration)

	// 2. Turn new connections away: a late one gets GOAWAY and a FIN. The listener stays open
	// until the last phase: closing it would reset the connections waiting in its accept
	// queue and refuse the next ones, which clients cannot tell from a dead pod.
	s.refusing.Store(true)
	report(PhaseDeregistered)

	// 3. GOAWAY in paced batches over the spread window: never all clients at once.
	s.goAwayPaced(ctx, d.SpreadWindow.Duration)
	report(PhaseGoAway)

	// 4. Requests in flight finish and their responses are written; clients close their old
	// connections once they have nothing pending. Wait at most FlushTimeout for all of that.
	flush, cancelFlush := context.WithTimeout(ctx, d.FlushTimeout.Duration)
	waitGroup(flush, &s.inFlight)
	s.waitClosed(flush)
	cancelFlush()
	report(PhaseFlushed)

	// 5. Whatever is left is closed, then the listener.
	s.stopLoops(ctx)
	report(PhaseClosed)
}

// goAwayPaced sends GOAWAY DRAINING to every connection, spread evenly over the whole window
// (pace); past the hard deadline the rest go at once. A connection a rebalance already moved
// keeps its GOAWAY (goAway sends one per connection).
func (s *Server) goAwayPaced(ctx context.Context, window time.Duration) {
	conns := s.liveConns()
	jitter := reconnectJitter(window)
	sent := pace(ctx, len(conns), window, func(i int) {
		conns[i].goAway(pb.GoAway_REASON_DRAINING, rand.N(jitter+1))
	})
	for _, c := range conns[sent:] {
		c.goAway(pb.GoAway_REASON_DRAINING, 0)
	}
}

// pace calls send(0) … send(n-1) spread evenly over window, in batches every drainTick: at
// tick k of K it sends floor((k+1)·n/K) − floor(k·n/K), so a few still take the whole window
// instead of one per tick. It returns how many it sent: n, or fewer when ctx ended first.
func pace(ctx context.Context, n int, window time.Duration, send func(i int)) int {
	ticks := max(int(window/drainTick), 1)
	t := time.NewTicker(drainTick)
	defer t.Stop()
	sent := 0
	for k := 0; k < ticks && sent < n; k++ {
		upTo := (k + 1) * n / ticks
		for ; sent < upTo; sent++ {
			send(sent)
		}
		if sent == n {
			break
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return sent
		}
	}
	return sent
}

// reconnectJitter is the most reconnect delay a GOAWAY paced over window gives: small next to
// the window, so that the reconnects keep the pacing's rate.
func reconnectJitter(window time.Duration) time.Duration {
	return min(maxReconnectJitter, window/4)
}

// goAway tells the client to reconnect elsewhere after delay, resuming its session (reason
// DRAINING or REBALANCE). It reports whether it sent the GOAWAY: a connection gets at most one
// (one a rebalance moved keeps its REBALANCE when the drain comes), and one already closing
// none. The session leaves the registry first, so no push is queued behind the GOAWAY (the
// client resumes from the positions it has; the new pod replays the rest). The connection
// stays open and readable: requests in flight get their responses, requests that crossed the
// GOAWAY get DRAINING (the SDK resends them on its next connection); the client closes it
// once it has nothing pending, and the flush phase (or, for a rebalance, closeAfterMove)
// bounds the wait.
func (c *conn) goAway(reason pb.GoAway_Reason, delay time.Duration) bool {
	s := c.srv
	if !c.sess.Established() {
		return c.sess.CloseAfter(s.goAwayFrame(pb.GoAway_REASON_DRAINING, delay, ""), session.ReasonDraining)
	}
	if closing, _ := c.sess.Closing(); closing {
		return false
	}
	// Requests are refused from before the GOAWAY is queued, so a request the client sends
	// after reading it is never forwarded; and every DRAINING answer follows the GOAWAY on the
	// wire (the reader waits while it is being queued: refusing), so the client knows the
	// connection is leaving when it reads one.
	if !c.away.CompareAndSwap(awayNone, awayQueuing) {
		return false
	}
	if s.sessions.Unregister(c.sess) {
		s.m.Sessions.Dec()
	}
	s.SendEncoded(c.sess, "goaway", s.goAwayFrame(reason, delay, resumeToken(s.cfg.ServerID)))
	c.away.Store(awayQueued)
	return true
}

// States of conn.away.
const (
	awayNone    uint32 = iota // serving requests
	awayQueuing               // the GOAWAY frame is being queued: requests wait, then get DRAINING
	awayQueued                // the GOAWAY is queued: requests get DRAINING
)

// refusing reports whether a request must get DRAINING. While the GOAWAY is being queued (a
// non-blocking append to the session's queue) it waits for that, so that the DRAINING answer
// is queued after the GOAWAY.
func (c *conn) refusing() bool {
	for range 1 << 20 { // bounded: the append takes microseconds
		switch c.away.Load() {
		case awayNone:
			return false
		case awayQueued:
			return true
		}
		runtime.Gosched()
	}
	return true
}

// resumeToken is opaque to clients; it names the pod that sent it, for diagnostics.
func resumeToken(serverID string) string {
	var b [9]byte
	_, _ = crand.Read(b[:])
	return serverID + "." + base64.RawURLEncoding.EncodeToString(b[:])
}

// waitClosed waits until every connection closed, or ctx is done.
func (s *Server) waitClosed(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond) // closes have no aggregate event; poll the count
	defer t.Stop()
	for s.conns.Load() > 0 {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (s *Server) liveConns() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.live))
	for _, c := range s.live {
		out = append(out, c)
	}
	return out
}

// stopLoops closes every remaining connection and stops the event loop (or the TLS listener
// and readers), the WebSocket listener and readers, and the workers. The closed connections linger until their peers close
// (closeLinger) before netpoll's shutdown, which would close them at once, with a reset where
// the peer's last bytes are unread.
func (s *Server) stopLoops(ctx context.Context) {
	for _, c := range s.liveConns() {
		c.sess.Abort(session.ReasonShutdown)
	}
	s.waitLingering(ctx)
	s.stopOnce.Do(func() { close(s.stop) })
	s.mu.Lock()
	loop, ln, wsln := s.loop, s.listener, s.wsListener
	s.mu.Unlock()
	if loop != nil {
		_ = loop.Shutdown(ctx)
	} else if ln != nil {
		_ = ln.Close()
	}
	if wsln != nil {
		_ = wsln.Close()
	}
	// The TLS and WebSocket listeners close where netpoll's Shutdown closes its own; then the
	// connections accepted meanwhile are closed and every reader is waited for (each returns
	// once its connection is closed: closeLinger at most).
	s.accepting.Wait()
	for _, c := range s.liveConns() {
		c.sess.Abort(session.ReasonShutdown)
	}
	waitGroup(ctx, &s.streams)
	s.workers.Wait()
}

// Shutdown is a drain without delays: every session is told to go away at once and the
// server stops within ctx. For tests and for processes that are not behind a load balancer.
func (s *Server) Shutdown(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	hard := 10 * time.Second
	if ok {
		hard = time.Until(deadline)
	}
	s.Drain(ctx, config.Drain{
		HardDeadline: config.Duration{Duration: hard},
		FlushTimeout: config.Duration{Duration: hard},
	}, nil)
	return ctx.Err()
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
