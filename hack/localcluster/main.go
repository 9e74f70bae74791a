// Command localcluster runs a real etcd and kube-apiserver on loopback (the binaries built by
// hack/k8s.sh), installs the project's CRDs, writes an admin kubeconfig and runs until
// interrupted. It is the control plane of `make demo`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tcpgateway/tcpgateway/test/k8stest"
)

func main() {
	assets := flag.String("assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory holding etcd and kube-apiserver (hack/k8s.sh prints it)")
	kubeconfig := flag.String("write-kubeconfig", "bin/demo.kubeconfig", "where to write the admin kubeconfig")
	flag.Parse()
	if err := run(*assets, *kubeconfig); err != nil {
		slog.Error("localcluster failed", "err", err)
		os.Exit(1)
	}
}

func run(assets, kubeconfig string) error {
	if assets == "" {
		return fmt.Errorf("no control plane binaries: pass -assets or set KUBEBUILDER_ASSETS")
	}
	env, err := k8stest.NewEnvironment(assets)
	if err != nil {
		return err
	}
	if _, err := env.Start(); err != nil {
		// A start that failed part-way (e.g. installing CRDs) may leave etcd and the API
		// server running.
		_ = env.Stop()
		return fmt.Errorf("while starting etcd and kube-apiserver: %w", err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			slog.Error("while stopping the control plane", "err", err)
		}
	}()

	admin, err := env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("while adding the admin user: %w", err)
	}
	data, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("while rendering the kubeconfig: %w", err)
	}
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		return fmt.Errorf("while writing the kubeconfig: %w", err)
	}
	slog.Info("control plane ready", "apiserver", admin.Config().Host, "kubeconfig", kubeconfig)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	slog.Info("stopping the control plane")
	return nil
}
