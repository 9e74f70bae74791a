package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/app"
	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/control"
)

// closeTimeout bounds the shutdown of the HTTP servers after the drain; it lets the preStop
// hook's `gateway drain -wait` get its answer before the process exits.
const closeTimeout = 2 * time.Second

// gatewayCommand runs the gateway. The drain starts from the preStop hook (the control
// socket) or from SIGTERM (ctx), whichever comes first; both run the same sequence once, and
// the process exits when it is done. SIGTERM stays handled to the end (Main's NotifyContext,
// then its exitGuard): the kubelet sends SIGTERM right after preStop returns, and with the
// default action restored that would end a finished drain with status 143.
func gatewayCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("gateway", stderr)
	path := fs.String("config", DefaultConfigPath, "configuration file (see gateway/config/testdata/full.yaml)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Logging, stderr)
	a, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		return err
	}
	ctl, ctlSrv, err := serveControl(cfg.Listen.Control, a, log)
	if err != nil {
		// Nothing was accepted yet that a drain would owe anything to.
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		return errors.Join(err, a.Shutdown(cctx))
	}
	log.Info("control socket ready", "path", ctl.Path())
	select {
	case <-ctx.Done():
		log.Info("signal received: draining", "hardDeadline", cfg.Drain.HardDeadline.String())
		dctx, cancel := context.WithTimeout(context.Background(), cfg.Drain.HardDeadline.Duration)
		defer cancel()
		_ = a.Drain(dctx)
	case <-a.Drained():
	}
	cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	// Shutdown waits for the preStop hook's answer, then closes (and removes) the socket.
	return errors.Join(ctlSrv.Shutdown(cctx), a.Close(cctx))
}

// serveControl binds the control socket and serves the drain on it.
func serveControl(path string, a *app.App, log *slog.Logger) (*control.Listener, *http.Server, error) {
	ln, err := control.Listen(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (listen.control, or TCPGW_LISTEN_CONTROL)", err)
	}
	srv := control.NewServer(a)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control server stopped", "err", err)
		}
	}()
	return ln, srv, nil
}

func newLogger(c config.Logging, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
