// Command gateway is the tcpgateway data plane: it holds client connections and forwards
// their requests to backends. Configuration: a YAML file (-config), see gateway/config.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tcpgateway/tcpgateway/gateway/app"
	"github.com/tcpgateway/tcpgateway/gateway/config"
)

func main() {
	path := flag.String("config", "/etc/tcpgateway/gateway.yaml", "configuration file")
	flag.Parse()
	if err := run(*path); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Logging)
	a, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-ctx.Done()
	log.Info("shutting down", "deadline", cfg.Drain.HardDeadline.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Drain.HardDeadline.Duration)
	defer cancel()
	return a.Shutdown(sctx)
}

func newLogger(c config.Logging) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
