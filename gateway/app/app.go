// Package app assembles one gateway from its configuration: auth, uplink router, client
// server on netpoll, the read-only admin HTTP server, metrics and, when configured, pprof on
// loopback. gateway/process runs it as the gateway process (signals, control socket), and
// tests start whole gateways in-process with the same code.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/cloudwego/netpoll"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tcpgateway/tcpgateway/gateway/admin"
	"github.com/tcpgateway/tcpgateway/gateway/auth"
	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/control"
	"github.com/tcpgateway/tcpgateway/gateway/downlink"
	"github.com/tcpgateway/tcpgateway/gateway/events"
	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/server"
	"github.com/tcpgateway/tcpgateway/gateway/uplink"
)

// App is a running gateway.
type App struct {
	cfg      *config.Config
	log      *slog.Logger
	registry *prometheus.Registry
	router   *uplink.Router
	server   *server.Server
	downlink *downlink.Consumer // nil without Kafka
	events   *events.Publisher  // nil without kafka.eventsTopic
	stopDown context.CancelFunc
	downDone chan struct{}

	drainOnce sync.Once
	drained   chan struct{} // closed when the drain finished
	phase     *prometheus.GaugeVec
	admin     *http.Server
	adminLn   net.Listener
	rebalance http.Handler // POST /rebalance on the admin port; nil without listen.rebalanceKeyFile
	pprof     *http.Server // nil unless listen.pprof is set
	pprofLn   net.Listener
}

// tuneNetpoll sizes netpoll's buffers once per process: they are package-level settings,
// read whenever a connection is created.
var tuneNetpoll sync.Once

// New builds a gateway from a validated configuration.
func New(cfg *config.Config, log *slog.Logger) (*App, error) {
	tuneNetpoll.Do(func() {
		netpoll.LinkBufferCap = cfg.Limits.ConnectionBufferBytes
		_ = netpoll.Configure(netpoll.Config{BufferSize: cfg.Limits.ConnectionBufferBytes})
	})
	if log == nil {
		log = slog.Default()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)

	if cfg.Auth.Webhook != nil {
		for _, c := range auth.WebhookCauses() {
			m.AuthWebhookFailures.WithLabelValues(c) // present at 0 from the start
		}
	}
	verifier, err := auth.New(cfg.Auth, auth.Options{
		Logger:         log,
		WebhookFailure: func(cause string) { m.AuthWebhookFailures.WithLabelValues(cause).Inc() },
	})
	if err != nil {
		return nil, fmt.Errorf("while setting up auth: %w", err)
	}
	router, err := uplink.NewRouter(cfg.Routes, uplink.Options{
		MaxResponseBytes: cfg.Limits.MaxFrameBytes,
		Observe:          server.ObserveUplink(m),
	})
	if err != nil {
		return nil, fmt.Errorf("while setting up routes: %w", err)
	}
	var sec kafkasec.Security
	if len(cfg.Kafka.Brokers) > 0 {
		// Built once and shared by every Kafka client of the gateway; its files are read
		// again for each new broker connection.
		if sec, err = kafkasec.FromConfig(cfg.Kafka); err != nil {
			return nil, fmt.Errorf("while setting up Kafka TLS and SASL: %w", err)
		}
	}
	var pub *events.Publisher
	opts := server.Options{Config: cfg, Verifier: verifier, Router: router, Metrics: m, Logger: log}
	if len(cfg.Kafka.Brokers) > 0 && cfg.Kafka.EventsTopic != "" {
		pub = events.New(events.Options{
			Brokers:           cfg.Kafka.Brokers,
			Security:          sec,
			Topic:             cfg.Kafka.EventsTopic,
			ServerID:          cfg.ServerID,
			QueueLength:       cfg.Kafka.EventsQueue,
			OmitRemoteAddress: cfg.Kafka.EventsOmitRemoteAddress,
			Metrics:           metrics.NewEvents(reg, events.Kinds()),
			Logger:            log,
		})
		opts.Events = pub
	}
	srv, err := server.New(opts)
	if err != nil {
		if pub != nil {
			pub.Close(context.Background())
		}
		return nil, err
	}
	a := &App{cfg: cfg, log: log, registry: reg, router: router, server: srv, events: pub, drained: make(chan struct{}), phase: m.DrainPhase}
	if a.rebalance, err = a.rebalanceEndpoint(reg); err != nil {
		if pub != nil {
			pub.Close(context.Background())
		}
		return nil, err
	}
	if len(cfg.Kafka.Brokers) > 0 {
		a.downlink, err = downlink.New(downlink.Options{
			Brokers:          cfg.Kafka.Brokers,
			Security:         sec,
			Topic:            cfg.Kafka.DownlinkTopic,
			ReceiptsTopic:    cfg.Kafka.ReceiptsTopic,
			ServerID:         cfg.ServerID,
			MaxFrameBytes:    cfg.Limits.MaxFrameBytes,
			PendingAnswers:   cfg.Limits.PendingAnswers,
			ReplayMaxRecords: cfg.Replay.MaxRecords,
			ReplayMaxAge:     cfg.Replay.MaxAge.Duration,
			Expiry:           expiryOptions(cfg.Kafka.Expiry),
			Sessions:         srv,
			Metrics:          metrics.NewDownlink(reg),
			Logger:           log,
		})
		if err != nil {
			if pub != nil {
				pub.Close(context.Background())
			}
			return nil, err
		}
		srv.SetDownlink(a.downlink)
	}
	return a, nil
}

// expiryOptions maps kafka.expiry onto the expiry tracker's options; the rest of them
// (join backoff, commit interval, margin, rewrite) keep downlink's defaults.
func expiryOptions(e config.KafkaExpiry) downlink.ExpiryOptions {
	return downlink.ExpiryOptions{
		SessionTimeout:    e.SessionTimeout.Duration,
		HeartbeatInterval: e.HeartbeatInterval.Duration,
		RebalanceTimeout:  e.RebalanceTimeout.Duration,
		MaxEntries:        e.MaxEntries,
	}
}

// Start binds the client and admin listeners (and pprof's, when configured) and serves in
// the background.
func (a *App) Start() error {
	ln, err := net.Listen("tcp", a.cfg.Listen.Clients)
	if err != nil {
		return fmt.Errorf("while listening for clients: %w", err)
	}
	if err := a.server.Serve(ln); err != nil {
		ln.Close()
		return err
	}
	wsAddr := ""
	if w := a.cfg.Listen.WebSocket; w != nil {
		wsln, err := net.Listen("tcp", w.Address)
		if err != nil {
			return fmt.Errorf("while listening for WebSocket clients: %w", err)
		}
		if err := a.server.ServeWebSocket(wsln); err != nil {
			wsln.Close()
			return err
		}
		wsAddr = wsln.Addr().String()
	}
	if a.downlink != nil {
		ctx, cancel := context.WithCancel(context.Background())
		a.stopDown, a.downDone = cancel, make(chan struct{})
		go func() {
			defer close(a.downDone)
			_ = a.downlink.Run(ctx)
		}()
	}
	a.adminLn, err = net.Listen("tcp", a.cfg.Listen.Admin)
	if err != nil {
		return fmt.Errorf("while listening for admin: %w", err)
	}
	a.admin = &http.Server{
		Handler: admin.Handler(admin.Options{
			Gatherer:  a.registry,
			Ready:     a.readyChecks(),
			Status:    a.status,
			Rebalance: a.rebalance,
		}),
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	a.serveHTTP("admin", a.admin, a.adminLn)
	if a.cfg.Listen.Pprof != "" {
		// config.Validate admits only loopback addresses here.
		if a.pprofLn, err = net.Listen("tcp", a.cfg.Listen.Pprof); err != nil {
			return fmt.Errorf("while listening for pprof: %w", err)
		}
		a.pprof = &http.Server{Handler: admin.Pprof(), ReadHeaderTimeout: 5 * time.Second}
		a.serveHTTP("pprof", a.pprof, a.pprofLn)
	}
	a.log.Info("gateway started", "server_id", a.cfg.ServerID, "clients", ln.Addr().String(), "admin", a.adminLn.Addr().String(),
		"websocket", wsAddr, "pprof", a.cfg.Listen.Pprof)
	return nil
}

func (a *App) serveHTTP(name string, srv *http.Server, ln net.Listener) {
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error(name+" server stopped", "err", err)
		}
	}()
}

func (a *App) readyChecks() []admin.Check {
	checks := []admin.Check{func() string {
		if a.server.Draining() {
			return "draining"
		}
		return ""
	}}
	if a.downlink != nil {
		checks = append(checks, a.downlink.Ready)
	}
	return checks
}

// Ready reports the readiness reasons ("" when ready), as /readyz does.
func (a *App) Ready() string {
	for _, check := range a.readyChecks() {
		if r := check(); r != "" {
			return r
		}
	}
	return ""
}

// Status is the /status document.
type Status struct {
	ServerID string `json:"serverID"`
	// NotReady is the first failing readiness reason (as /readyz says it), empty when ready.
	NotReady    string         `json:"notReady,omitempty"`
	Draining    bool           `json:"draining"`
	Connections int64          `json:"connections"`
	Sessions    int            `json:"sessions"`
	InFlight    map[string]int `json:"uplinkInFlight"`
}

func (a *App) status() any {
	st := Status{
		ServerID:    a.cfg.ServerID,
		NotReady:    a.Ready(),
		Draining:    a.server.Draining(),
		Connections: a.server.Connections(),
		Sessions:    a.server.Sessions().Len(),
		InFlight:    map[string]int{},
	}
	for _, r := range a.router.Routes() {
		st.InFlight[r] = a.router.InFlight(r)
	}
	return st
}

// UserSessions lists the user's sessions on this gateway, for the control socket's
// read-only debugging endpoint (`gateway sessions -user U`).
func (a *App) UserSessions(userID string) []control.Session {
	var out []control.Session
	for _, s := range a.server.Sessions().User(nil, userID) {
		out = append(out, control.Session{
			SessionID: s.SessionID, UserID: s.UserID, DeviceID: s.DeviceID, ClientVersion: s.ClientVersion,
			Groups: s.Groups, Remote: s.Remote, Connected: s.Connected.UTC(),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SessionID < out[j].SessionID })
	return out
}

// Rebalance moves count of this pod's sessions away at rate per second (server.Rebalance), for
// the control socket's `gateway rebalance`. With wait it returns once the run ended (or ctx
// ended: the run goes on).
func (a *App) Rebalance(ctx context.Context, count, rate int, wait bool) (control.RebalanceStatus, error) {
	r, err := a.server.Rebalance(count, rate)
	var re *server.RebalanceError
	if errors.As(err, &re) {
		return control.RebalanceStatus{}, &control.RebalanceError{Reason: string(re.Reason), Message: re.Detail}
	}
	if err != nil {
		return control.RebalanceStatus{}, err
	}
	if wait {
		select {
		case <-r.Done():
		case <-ctx.Done():
			return control.RebalanceStatus{}, ctx.Err()
		}
	}
	return rebalanceStatus(r), nil
}

func rebalanceStatus(r *server.Rebalance) control.RebalanceStatus {
	st := control.RebalanceStatus{Count: r.Count, Rate: r.Rate, Sessions: r.Sessions, WindowMs: r.Window.Milliseconds()}
	select {
	case <-r.Done():
		st.Done = true // read first: once done, Sent is final
	default:
	}
	st.Sent = r.Sent()
	return st
}

// ClientAddr and AdminAddr are the bound addresses (useful with port 0).
func (a *App) ClientAddr() string { return a.server.Addr().String() }
func (a *App) AdminAddr() string  { return a.adminLn.Addr().String() }

// PprofAddr is pprof's bound address, "" when listen.pprof is not set.
func (a *App) PprofAddr() string {
	if a.pprofLn == nil {
		return ""
	}
	return a.pprofLn.Addr().String()
}

// Registry is the gateway's metrics registry (what /metrics serves).
func (a *App) Registry() *prometheus.Registry { return a.registry }

// Server exposes the client server (the downlink delivers through its sessions).
func (a *App) Server() *server.Server { return a.server }

// Drain runs the graceful drain with the configured pacing (see server.Drain), then stops
// the downlink after committing its progress. It runs once: later calls wait for the first.
// It returns when the drain finished or ctx is done.
func (a *App) Drain(ctx context.Context) error {
	return a.drain(ctx, a.cfg.Drain)
}

// Drained is closed once the drain finished.
func (a *App) Drained() <-chan struct{} { return a.drained }

// Shutdown drains without delays (every session told at once) and stops the admin server: for
// tests and for gateways that are not behind a load balancer.
func (a *App) Shutdown(ctx context.Context) error {
	hard := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		hard = time.Until(dl)
	}
	err := a.drain(ctx, config.Drain{HardDeadline: config.Duration{Duration: hard}, FlushTimeout: config.Duration{Duration: hard}})
	return errors.Join(err, a.Close(ctx))
}

// Close stops the admin and pprof servers and the router's idle connections; call it after
// Drain.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	for _, srv := range []*http.Server{a.admin, a.pprof} {
		if srv != nil {
			errs = append(errs, srv.Shutdown(ctx))
		}
	}
	a.router.Close()
	return errors.Join(errs...)
}

func (a *App) drain(ctx context.Context, d config.Drain) error {
	a.drainOnce.Do(func() {
		go func() {
			defer close(a.drained)
			start := time.Now()
			a.log.Info("drain started", "deregistrationDelay", d.DeregistrationDelay.String(),
				"spreadWindow", d.SpreadWindow.String(), "flushTimeout", d.FlushTimeout.String(), "hardDeadline", d.HardDeadline.String())
			hard, cancel := context.WithTimeout(context.Background(), d.HardDeadline.Duration)
			defer cancel()
			a.server.Drain(hard, d, func(p server.DrainPhase) {
				took := time.Since(start)
				a.phase.WithLabelValues(string(p)).Set(took.Seconds())
				a.log.Info("drain phase done", "phase", p, "sinceStart", took.String(), "connections", a.server.Connections())
			})
			if a.stopDown != nil {
				a.stopDown() // the consumer commits what it handled on its way out
				select {
				case <-a.downDone:
				case <-hard.Done():
				}
			}
			if a.events != nil {
				// After the drain: its DISCONNECTED events go out, within the hard deadline.
				a.events.Close(hard)
			}
			a.phase.WithLabelValues("committed").Set(time.Since(start).Seconds())
			a.log.Info("drain finished", "took", time.Since(start).String())
		}()
	})
	select {
	case <-a.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
