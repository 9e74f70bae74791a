package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// MaxRebalanceRate bounds the GOAWAYs per second a rebalance may send: the reconnects land on
// the other pods at about that rate, and a drain spreads a whole pod over seconds, not less.
const MaxRebalanceRate = 1000

// RebalanceRefusal says why a rebalance did not start. The same string is the
// tcpgw_rebalance_requests_total{result} label and the control socket's answer.
type RebalanceRefusal string

const (
	// RebalanceRunning: another rebalance is moving sessions; it is left alone (ask again
	// once it ended).
	RebalanceRunning RebalanceRefusal = "running"
	// RebalanceDraining: the pod drains, which moves every session anyway.
	RebalanceDraining RebalanceRefusal = "draining"
	// RebalanceBadCount: count is below 1 or above the sessions this pod holds.
	RebalanceBadCount RebalanceRefusal = "bad_count"
	// RebalanceBadRate: rate is below 1 or above MaxRebalanceRate.
	RebalanceBadRate RebalanceRefusal = "bad_rate"
)

// RebalanceStarted is the tcpgw_rebalance_requests_total{result} label of an accepted request.
const RebalanceStarted = "started"

// RebalanceResults are every label value of tcpgw_rebalance_requests_total.
var RebalanceResults = []string{RebalanceStarted, string(RebalanceRunning), string(RebalanceDraining), string(RebalanceBadCount), string(RebalanceBadRate)}

// RebalanceError is a refused rebalance.
type RebalanceError struct {
	Reason RebalanceRefusal
	Detail string
}

func (e *RebalanceError) Error() string {
	return fmt.Sprintf("rebalance refused (%s): %s", e.Reason, e.Detail)
}

// Rebalance is one run of Server.Rebalance. Its fields are fixed when it starts.
type Rebalance struct {
	Count    int           // sessions to move
	Rate     int           // GOAWAYs per second
	Sessions int           // sessions the pod held when it started
	Window   time.Duration // Count/Rate: how long the GOAWAYs take
	Started  time.Time

	sent   atomic.Int64
	done   chan struct{}
	cancel context.CancelFunc
}

// Sent is how many sessions were told to go away so far.
func (r *Rebalance) Sent() int { return int(r.sent.Load()) }

// Done is closed once the run ended: Count GOAWAYs sent, or fewer when sessions it had chosen
// closed on their own first or a drain stopped it.
func (r *Rebalance) Done() <-chan struct{} { return r.done }

// Rebalance moves count of this pod's sessions away: GOAWAY REBALANCE with a resume token and
// a small jittered delay (as the drain gives), rate per second, spread evenly (the drain's
// pacing) over count/rate seconds. It returns at once; the run goes on in the background.
// The pod stays ready and keeps accepting connections, including the moved clients, should
// the load balancer send them back.
//
// It moves the oldest sessions first (by accept time): a client moved here by an earlier
// rebalance, or that reconnected recently for any reason, is the last one moved again, so
// repeated rebalances spread the disruption over every client instead of bouncing the same
// few. Unacknowledged pushes need no care: the new pod replays what the client missed and
// accepts its answers to pushes sent before (the replay window).
//
// Each moved connection closes once the client closed it (after its calls in flight were
// answered), or drain.flushTimeout after its GOAWAY, whichever is first: a client that ignores
// the GOAWAY does not keep its connection (and its place in this pod's count).
//
// Refused, with a *RebalanceError: while another run goes on (not replaced: its sessions are
// already chosen and half told), during a drain, count outside [1, sessions held], rate
// outside [1, MaxRebalanceRate]. A drain starting meanwhile stops the run (the drain moves
// everyone).
func (s *Server) Rebalance(count, rate int) (*Rebalance, error) {
	r, err := s.startRebalance(count, rate)
	result := RebalanceStarted
	if err != nil {
		result = string(err.(*RebalanceError).Reason)
	}
	s.m.RebalanceRequests.WithLabelValues(result).Inc()
	return r, err
}

func (s *Server) startRebalance(count, rate int) (*Rebalance, error) {
	if s.draining.Load() {
		return nil, &RebalanceError{RebalanceDraining, "the pod is draining"}
	}
	if rate < 1 || rate > MaxRebalanceRate {
		return nil, &RebalanceError{RebalanceBadRate, fmt.Sprintf("rate %d per second is outside [1, %d]", rate, MaxRebalanceRate)}
	}
	conns := s.movable()
	if count < 1 || count > len(conns) {
		return nil, &RebalanceError{RebalanceBadCount, fmt.Sprintf("count %d is outside [1, %d] (the sessions this pod holds)", count, len(conns))}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Rebalance{
		Count:    count,
		Rate:     rate,
		Sessions: len(conns),
		Window:   time.Duration(count) * time.Second / time.Duration(rate),
		Started:  s.now(),
		done:     make(chan struct{}),
		cancel:   cancel,
	}
	if !s.rebalance.CompareAndSwap(nil, r) {
		cancel()
		running := s.rebalance.Load()
		detail := "another rebalance is running"
		if running != nil {
			detail = fmt.Sprintf("another rebalance is running: %d of %d sent", running.Sent(), running.Count)
		}
		return nil, &RebalanceError{RebalanceRunning, detail}
	}
	// A drain that began since the check above has already looked for a run to stop.
	if s.draining.Load() {
		s.rebalance.Store(nil)
		cancel()
		return nil, &RebalanceError{RebalanceDraining, "the pod is draining"}
	}
	s.m.Rebalancing.Set(1)
	s.log.Info("rebalance started", "count", count, "rate", rate, "sessions", len(conns), "window", r.Window.String())
	go s.runRebalance(ctx, r, oldestFirst(conns)[:count])
	return r, nil
}

func (s *Server) runRebalance(ctx context.Context, r *Rebalance, conns []*conn) {
	defer func() {
		r.cancel()
		s.rebalance.Store(nil)
		s.m.Rebalancing.Set(0)
		s.log.Info("rebalance finished", "sent", r.Sent(), "count", r.Count, "took", s.now().Sub(r.Started).String())
		close(r.done)
	}()
	jitter := reconnectJitter(r.Window)
	flush := s.cfg.Drain.FlushTimeout.Duration
	pace(ctx, len(conns), r.Window, func(i int) {
		c := conns[i]
		if !c.goAway(pb.GoAway_REASON_REBALANCE, rand.N(jitter+1)) {
			return // closed meanwhile, or already told to go away
		}
		r.sent.Add(1)
		s.m.RebalanceGoAways.Inc()
		time.AfterFunc(flush, func() { c.sess.CloseAfter(nil, session.ReasonRebalance) })
	})
}

// stopRebalance ends a running rebalance (the drain takes over).
func (s *Server) stopRebalance() {
	if r := s.rebalance.Load(); r != nil {
		r.cancel()
		<-r.done
	}
}

// movable lists the connections a rebalance may move: handshaken, not told to go away, not
// closing.
func (s *Server) movable() []*conn {
	all := s.liveConns()
	out := all[:0]
	for _, c := range all {
		if closing, _ := c.sess.Closing(); c.sess.Established() && c.away.Load() == awayNone && !closing {
			out = append(out, c)
		}
	}
	return out
}

// oldestFirst sorts conns by accept time, oldest first.
func oldestFirst(conns []*conn) []*conn {
	slices.SortStableFunc(conns, func(a, b *conn) int { return a.sess.Connected.Compare(b.sess.Connected) })
	return conns
}
