package server

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// slowCloseGrace is how long a client closed as a slow consumer has to read what was in
// flight and its ERROR SLOW_CONSUMER before the connection is torn down regardless. Its
// in-flight bytes stay allocated meanwhile (not charged to later sends: see session.Budget),
// so it is short.
const slowCloseGrace = 5 * time.Second

// Reasons of tcpgw_connections_refused_total beyond server_full and draining.
const (
	refusedPending = "pending_handshakes"
	refusedAddress = "address_limit" // the close reason of ERROR ADDRESS_LIMIT too
)

// refuseLimit closes a connection a limit refused, with a fatal ERROR: counted in
// tcpgw_connections_refused_total{reason} (and tcpgw_address_limited_total{limit} for the
// per-address limits) and logged at a bounded rate, since an attacker repeats it at will.
func (c *conn) refuseLimit(reason, limit string, code pb.ErrorCode, detail string) {
	s := c.srv
	s.m.ConnectionsRefused.WithLabelValues(reason).Inc()
	if limit != "" {
		s.m.AddressLimited.WithLabelValues(limit).Inc()
	}
	if c.closeWithError(code, detail) {
		s.logSometimes(&s.refuseLog, "refusing connections", "reason", reason, "limit", limit,
			"detail", detail, "remote", c.sess.Remote)
	}
}

// allow takes a token from the connection's request bucket (limits.requestsPerSecond and
// requestBurst), creating the bucket on first use: an idle connection holds none. A
// rate.Limiter starts full whenever it is created, so creating it at the first request
// answers exactly as one created at the handshake would. Called only by the reader.
func (c *conn) allow() bool {
	if c.limiter == nil {
		c.limiter = rate.NewLimiter(rate.Limit(c.srv.limits.RequestsPerSecond), c.srv.limits.RequestBurst)
	}
	return c.limiter.Allow()
}

// admitAddress counts the connection against its address's limit, and reports whether it is
// within it. A connection without an IP address (none over TCP) is not limited.
func (c *conn) admitAddress(now time.Time) bool {
	key, ok := addressKey(c.remote)
	if !ok {
		return true
	}
	c.addr = c.srv.addrs.acquire(key, now)
	return c.addr != nil
}

// releaseAddress gives back the connection's place in its address's limit; called once, on
// close.
func (c *conn) releaseAddress() {
	if c.addr != nil {
		c.srv.addrs.release(c.addr, c.srv.now())
	}
}

// sweepAddresses forgets addresses with no connection whose handshake bucket filled up again,
// until Shutdown.
func (s *Server) sweepAddresses() {
	t := time.NewTicker(addressSweepInterval)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			s.addrs.sweep(now)
		case <-s.stop:
			return
		}
	}
}

// Which bound a connection counts against. Every connection starts pending; a completed
// handshake moves it to established; its close releases it. Changed by compare-and-swap, so
// the handshake and the close hook never both release one connection.
const (
	admitPending uint32 = iota
	admitEstablished
	admitReleased
)

// admitPendingConn counts a new connection against limits.maxPendingHandshakes and reports
// whether it is within the bound. A refused connection stays counted until it closes: it
// holds its resources until then.
func (s *Server) admitPendingConn() bool {
	s.m.PendingHandshakes.Inc()
	return s.pending.Add(1) <= int64(s.limits.MaxPendingHandshakes)
}

// establishedFull is the cheap check before verifying a token: no point spending a
// verification on a handshake that limits.maxConnections refuses anyway.
func (s *Server) establishedFull() bool {
	return s.established.Load() >= int64(s.limits.MaxConnections)
}

// establish moves c from the pending bound to the established one (limits.maxConnections).
// It returns false when the pod holds its maximum of sessions, or when c closed meanwhile.
func (c *conn) establish() bool {
	s := c.srv
	if s.established.Add(1) > int64(s.limits.MaxConnections) {
		s.established.Add(-1)
		return false
	}
	if !c.admission.CompareAndSwap(admitPending, admitEstablished) {
		s.established.Add(-1)
		return false
	}
	s.pending.Add(-1)
	s.m.PendingHandshakes.Dec()
	return true
}

// releaseAdmission gives back whichever bound c counted against; called once, on close.
func (c *conn) releaseAdmission() {
	s := c.srv
	switch c.admission.Swap(admitReleased) {
	case admitPending:
		s.pending.Add(-1)
		s.m.PendingHandshakes.Dec()
	case admitEstablished:
		s.established.Add(-1)
	}
}

// shedCandidate is a session holding outbound bytes, for the budget's shed order.
type shedCandidate struct {
	sess    *session.Session
	pending int64
	since   int64 // start of its write in progress, Unix ns; 0 when none
}

// shedOrder sorts candidates slowest first: the oldest write still in progress (a client that
// stopped reading), then the most bytes; sessions with no write in progress come last (their
// write is about to start, or is a Wake's, which does not wait).
func shedOrder(a, b shedCandidate) int {
	if (a.since == 0) != (b.since == 0) {
		if a.since == 0 {
			return 1
		}
		return -1
	}
	if c := cmp.Compare(a.since, b.since); c != 0 {
		return c
	}
	return cmp.Compare(b.pending, a.pending)
}

// shed is the outbound budget's shed function: it closes the slowest consumers with ERROR
// SLOW_CONSUMER until need bytes are freed. It runs on the goroutine whose send crossed the
// budget (one at a time) and scans every live connection: costly, but only when the budget
// is exceeded, and each call frees an eighth of the budget beyond the excess.
func (s *Server) shed(need int64) {
	var cands []shedCandidate
	for _, c := range s.liveConns() {
		pending, since, shed := c.sess.Outbound()
		if shed || pending == 0 {
			continue
		}
		cands = append(cands, shedCandidate{sess: c.sess, pending: pending, since: since})
	}
	slices.SortFunc(cands, shedOrder)
	var freed int64
	for _, c := range cands {
		if freed >= need {
			break
		}
		if n := c.sess.ShedSlow(); n > 0 {
			freed += n
			s.m.OutboundShed.Inc()
			s.logSometimes(&s.shedLog, "outbound budget exhausted: closing the slowest consumer",
				"reason", session.ReasonSlowConsumer, "remote", c.sess.Remote, "pending_bytes", c.pending,
				"budget_bytes", s.limits.OutboundBudgetBytes)
		}
	}
}

// OutboundBytes is the number of bytes accepted for clients and not yet written.
func (s *Server) OutboundBytes() int64 { return s.budget.Used() }

// logSometimes logs at most once per second per call site (sometimes), counting what it
// skipped: an attack must not turn into a flood of log lines.
func (s *Server) logSometimes(sometimes *rateLog, msg string, args ...any) {
	sometimes.skipped.Add(1)
	sometimes.Do(func() {
		s.log.Warn(msg, append(args, "similar_since_last", sometimes.skipped.Swap(0)-1)...)
	})
}

// rateLog is one rate-limited log site.
type rateLog struct {
	rate.Sometimes
	skipped atomic.Int64
}

func newRateLog() rateLog { return rateLog{Sometimes: rate.Sometimes{First: 1, Interval: time.Second}} }
