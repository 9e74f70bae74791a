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
	"time"

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
	// The drain starts from the preStop hook (/drain) or from SIGTERM, whichever comes first;
	// both run the same sequence once. The process exits when it is done. The handler stays
	// registered to the end: the kubelet sends SIGTERM right after preStop returns, and with
	// the default action restored that would end a finished drain with status 143.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	select {
	case <-sigs:
		log.Info("signal received: draining", "hardDeadline", cfg.Drain.HardDeadline.String())
		dctx, cancel := context.WithTimeout(context.Background(), cfg.Drain.HardDeadline.Duration)
		defer cancel()
		_ = a.Drain(dctx)
	case <-a.Drained():
	}
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return a.Close(cctx)
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
