// Package app assembles one gateway process from its configuration: auth, uplink router,
// client server on netpoll, admin HTTP server and metrics. cmd/gateway is a thin main around
// it, and tests start whole gateways in-process with the same code.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tcpgateway/tcpgateway/gateway/admin"
	"github.com/tcpgateway/tcpgateway/gateway/auth"
	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/downlink"
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
	stopDown context.CancelFunc
	downDone chan struct{}
	admin    *http.Server
	adminLn  net.Listener
}

// New builds a gateway from a validated configuration.
func New(cfg *config.Config, log *slog.Logger) (*App, error) {
	if log == nil {
		log = slog.Default()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)

	verifier, err := auth.New(cfg.Auth)
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
	srv, err := server.New(server.Options{Config: cfg, Verifier: verifier, Router: router, Metrics: m, Logger: log})
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, registry: reg, router: router, server: srv}
	if len(cfg.Kafka.Brokers) > 0 {
		a.downlink, err = downlink.New(downlink.Options{
			Brokers:       cfg.Kafka.Brokers,
			Topic:         cfg.Kafka.DownlinkTopic,
			ReceiptsTopic: cfg.Kafka.ReceiptsTopic,
			ServerID:      cfg.ServerID,
			MaxFrameBytes: cfg.Limits.MaxFrameBytes,
			Sessions:      srv,
			Metrics:       metrics.NewDownlink(reg),
			Logger:        log,
		})
		if err != nil {
			return nil, err
		}
		srv.SetPushHandler(a.downlink)
	}
	return a, nil
}

// Start binds both listeners and serves in the background.
func (a *App) Start() error {
	ln, err := net.Listen("tcp", a.cfg.Listen.Clients)
	if err != nil {
		return fmt.Errorf("while listening for clients: %w", err)
	}
	if err := a.server.Serve(ln); err != nil {
		ln.Close()
		return err
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
			Gatherer: a.registry,
			Ready:    a.readyChecks(),
			Status:   a.status,
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() {
		if err := a.admin.Serve(a.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin server stopped", "err", err)
		}
	}()
	a.log.Info("gateway started", "server_id", a.cfg.ServerID, "clients", ln.Addr().String(), "admin", a.adminLn.Addr().String())
	return nil
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
	ServerID    string         `json:"serverID"`
	Draining    bool           `json:"draining"`
	Connections int64          `json:"connections"`
	Sessions    int            `json:"sessions"`
	InFlight    map[string]int `json:"uplinkInFlight"`
}

func (a *App) status() any {
	st := Status{
		ServerID:    a.cfg.ServerID,
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

// ClientAddr and AdminAddr are the bound addresses (useful with port 0).
func (a *App) ClientAddr() string { return a.server.Addr().String() }
func (a *App) AdminAddr() string  { return a.adminLn.Addr().String() }

// Registry is the gateway's metrics registry (what /metrics serves).
func (a *App) Registry() *prometheus.Registry { return a.registry }

// Server exposes the client server (the downlink delivers through its sessions).
func (a *App) Server() *server.Server { return a.server }

// Shutdown stops the gateway within ctx.
func (a *App) Shutdown(ctx context.Context) error {
	err := a.server.Shutdown(ctx)
	if a.stopDown != nil {
		a.stopDown()
		select {
		case <-a.downDone:
		case <-ctx.Done():
		}
	}
	if a.admin != nil {
		err = errors.Join(err, a.admin.Shutdown(ctx))
	}
	a.router.Close()
	return err
}
