// Package server wires the data plane onto netpoll, or onto crypto/tls when the gateway
// terminates TLS itself (listen.tls; tls.go): it accepts connections, decodes frames, runs the
// handshake, answers heartbeats, dispatches uplink requests to a bounded worker pool, enforces
// every limit with a typed reason, and shuts down in order.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/netpoll"
	"github.com/gobwas/ws"

	"github.com/tcpgateway/tcpgateway/gateway/auth"
	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/gateway/uplink"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// writeTimeout bounds one flush to a client socket. A peer that reads nothing for this long
// is closed (write_failed) even if its queue has not filled up yet.
const writeTimeout = 15 * time.Second

// wheelTick is the resolution of handshake and idle deadlines.
const wheelTick = 250 * time.Millisecond

// Downlink is what the server needs from the downlink consumer: it receives what clients say
// about pushes, and it attaches new sessions (watermarks, resume replay) atomically with its
// delivery. The downlink package implements it; without one, acks and replies are ignored and
// resumes report nothing to replay.
type Downlink interface {
	// SentBefore finds a push that asked for an answer and was sent to the session's identity
	// before this connection (another connection of the session, maybe on another pod): the
	// replay window holds its record at pos with that message id, and its target selects s.
	SentBefore(s *session.Session, messageID string, pos *pb.Position, nowMs int64) (session.Answerable, bool)
	// Answered writes the receipt of an accepted answer (ACKED, or REPLIED with payload).
	Answered(s *session.Session, a session.Answerable, reply bool, payload []byte)
	Attach(ctx context.Context, s *session.Session, resume *pb.Resume, attach func(watermarks []*pb.Position, result *pb.ResumeResult))
}

// Options are the collaborators of a Server.
type Options struct {
	Config   *config.Config
	Verifier auth.Verifier
	Router   *uplink.Router
	Metrics  *metrics.Gateway
	Logger   *slog.Logger
	Downlink Downlink
	// Events, when set, hears of each session's connect, replace, resume and disconnect.
	Events SessionEvents
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is one gateway instance's client-facing side.
type Server struct {
	cfg      *config.Config
	limits   config.Limits
	verifier auth.Verifier
	router   *uplink.Router
	m        *metrics.Gateway
	log      *slog.Logger
	downlink Downlink
	events   SessionEvents
	connNum  atomic.Uint64 // numbers handshaken connections for events
	now      func() time.Time
	sessions *session.Manager
	wheel    *session.Wheel
	frames   *frameCounters

	work     chan func() // uplink jobs, taken by the worker pool
	inFlight sync.WaitGroup

	conns       atomic.Int64 // open connections, whatever their state
	lingering   atomic.Int64 // closed connections waiting for the peer's FIN (socket.go)
	pending     atomic.Int64 // connections counted against limits.maxPendingHandshakes
	established atomic.Int64 // connections counted against limits.maxConnections
	budget      *session.Budget
	// sessionLimits and hooks are shared by every session (one copy per server, not per
	// connection).
	sessionLimits session.Limits
	hooks         *session.Hooks
	addrs         *addressTable
	shedLog       rateLog
	refuseLog     rateLog
	acceptLog     rateLog
	tlsLog        rateLog
	draining      atomic.Bool               // readiness fails: the first drain phase
	refusing      atomic.Bool               // new connections get GOAWAY: after the deregistration delay
	rebalance     atomic.Pointer[Rebalance] // the running rebalance, nil when none (rebalance.go)

	mu       sync.Mutex        // guards loop, listener, live
	loop     netpoll.EventLoop // nil with listen.tls
	listener net.Listener
	live     map[*session.Session]*conn // every open connection, for drain

	// With listen.tls (tls.go): the TLS configuration, the accept loop and the connections'
	// reader goroutines.
	tlsConfig *tls.Config
	accepting sync.WaitGroup
	streams   sync.WaitGroup

	// With listen.websocket (websocket.go): its listener (guarded by mu), its TLS
	// configuration (nil: plaintext) and upgrader. Its accept loop and readers count in
	// accepting and streams.
	wsListener net.Listener
	wsTLS      *tls.Config
	wsUpgrader ws.Upgrader
	wsLog      rateLog

	stop     chan struct{}
	stopOnce sync.Once
	workers  sync.WaitGroup
}

// New builds a server; Serve starts it.
func New(opts Options) (*Server, error) {
	if opts.Config == nil || opts.Verifier == nil || opts.Router == nil || opts.Metrics == nil {
		return nil, errors.New("server: Config, Verifier, Router and Metrics are required")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	l := opts.Config.Limits
	span := max(l.IdleTimeout.Duration, l.HandshakeTimeout.Duration) + time.Second
	s := &Server{
		cfg:       opts.Config,
		limits:    l,
		verifier:  opts.Verifier,
		router:    opts.Router,
		m:         opts.Metrics,
		log:       log,
		downlink:  opts.Downlink,
		events:    opts.Events,
		now:       now,
		sessions:  session.NewManager(),
		wheel:     session.NewWheel(wheelTick, span, now()),
		frames:    newFrameCounters(opts.Metrics),
		work:      make(chan func(), l.UplinkWorkers*4),
		live:      map[*session.Session]*conn{},
		stop:      make(chan struct{}),
		shedLog:   newRateLog(),
		refuseLog: newRateLog(),
		acceptLog: newRateLog(),
		tlsLog:    newRateLog(),
		wsLog:     newRateLog(),
		addrs:     newAddressTable(l.PerAddress, l.MaxConnections+l.MaxPendingHandshakes),
	}
	if t := opts.Config.Listen.TLS; t != nil {
		cfg, err := newTLSConfig(*t, opts.Metrics, log, now)
		if err != nil {
			return nil, err
		}
		s.tlsConfig = cfg
	}
	if w := opts.Config.Listen.WebSocket; w != nil {
		u, err := newWSUpgrader(w)
		if err != nil {
			return nil, fmt.Errorf("listen.websocket: %w", err)
		}
		s.wsUpgrader = u
		if w.TLS != nil {
			cfg, err := newTLSConfig(*w.TLS, opts.Metrics, log, now)
			if err != nil {
				return nil, fmt.Errorf("listen.websocket.tls: %w", err)
			}
			s.wsTLS = cfg
		}
	}
	s.budget = session.NewBudget(int64(l.OutboundBudgetBytes), s.shed)
	s.m.OutboundBudget.Set(float64(l.OutboundBudgetBytes))
	s.sessionLimits = session.Limits{
		QueueFrames:    l.OutboundQueueFrames,
		QueueBytes:     l.OutboundQueueBytes,
		Budget:         s.budget,
		SlowCloseGrace: slowCloseGrace,
	}
	for _, r := range RebalanceResults {
		s.m.RebalanceRequests.WithLabelValues(r)
	}
	s.m.SetSources(metrics.Sources{OutboundBytes: s.budget.Used, AddressesTracked: s.addrs.len})
	s.hooks = &session.Hooks{Closed: s.onSessionClosed, Flushed: s.onFlushed}
	return s, nil
}

// SetDownlink installs the downlink. Call it before Serve: the downlink consumer needs the
// server (for its sessions) before it can be passed in.
func (s *Server) SetDownlink(d Downlink) { s.downlink = d }

// Sessions is the registry of live sessions (the downlink delivers through it).
func (s *Server) Sessions() *session.Manager { return s.sessions }

// Serve serves clients on ln until Shutdown: on netpoll, or with listen.tls on Go's net
// package and crypto/tls. It returns once serving started; errors after that are logged.
func (s *Server) Serve(ln net.Listener) error {
	var loop netpoll.EventLoop
	if s.tlsConfig == nil {
		var err error
		loop, err = netpoll.NewEventLoop(s.onRequest,
			netpoll.WithOnConnect(s.onConnect),
			netpoll.WithWriteTimeout(writeTimeout),
		)
		if err != nil {
			return fmt.Errorf("while creating the event loop: %w", err)
		}
	}
	s.mu.Lock()
	s.loop, s.listener = loop, ln
	s.mu.Unlock()

	for range s.limits.UplinkWorkers {
		s.workers.Add(1)
		go s.worker()
	}
	go s.sweepAddresses()
	ticker := time.NewTicker(wheelTick)
	go func() {
		defer ticker.Stop()
		s.wheel.Run(ticker.C, s.stop)
	}()
	if loop == nil {
		s.accepting.Add(1)
		go s.acceptLoop(ln, "TLS", s.openStream)
		s.log.Info("serving clients over TLS", "address", ln.Addr().String())
		return nil
	}
	go func() {
		if err := loop.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Error("event loop stopped", "err", err)
		}
	}()
	s.log.Info("serving clients", "address", ln.Addr().String())
	return nil
}

// Addr is the bound client address.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Draining reports whether a drain started (readiness fails from then on).
func (s *Server) Draining() bool { return s.draining.Load() }

// Connections is the number of open client connections.
func (s *Server) Connections() int64 { return s.conns.Load() }

// worker runs uplink jobs until Shutdown. The work channel is never closed, so a request
// racing with Shutdown cannot panic on a closed channel; it is answered or dropped.
func (s *Server) worker() {
	defer s.workers.Done()
	for {
		select {
		case job := <-s.work:
			job()
		case <-s.stop:
			return
		}
	}
}

// waitGroup waits for wg or ctx, whichever comes first.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
