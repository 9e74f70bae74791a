// Command localcluster runs the whole local system of test/cluster on loopback: a real etcd
// and kube-apiserver (with the project's CRDs), kube-controller-manager and kube-scheduler
// (the binaries built by hack/k8s.sh), node agents that run pods as local processes on
// 127.0.10.x, and the LoadBalancer simulator (127.0.20.x). It writes an admin kubeconfig and
// runs until interrupted. It is the control plane of `make demo`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tcpgateway/tcpgateway/test/cluster"
)

func main() {
	assets := flag.String("assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory holding etcd, kube-apiserver, kube-controller-manager and kube-scheduler (hack/k8s.sh prints it)")
	kubeconfig := flag.String("write-kubeconfig", "bin/demo.kubeconfig", "where to write the admin kubeconfig")
	nodes := flag.Int("nodes", 2, "number of node agents")
	binaries := flag.String("binaries", "", "image or command to local binary map: name=path,... (e.g. /usr/local/bin/gateway=bin/gateway)")
	dir := flag.String("dir", "", "working directory for logs and pod folders (default: a temporary directory)")
	dereg := flag.Duration("lb-deregistration-delay", 2*time.Second, "deregistration delay of simulated load balancers")
	shutdownGrace := flag.Duration("shutdown-grace-period", time.Minute,
		"at exit, node agents terminate their pods as a kubelet's graceful node shutdown does (preStop, SIGTERM, SIGKILL when the pod's grace period or this runs out); 0: kill them at once")
	flag.Parse()
	if err := run(*assets, *kubeconfig, *nodes, *binaries, *dir, *dereg, *shutdownGrace); err != nil {
		slog.Error("localcluster failed", "err", err)
		os.Exit(1)
	}
}

func parseBinaries(s string) (map[string]string, error) {
	m := map[string]string{}
	for kv := range strings.SplitSeq(s, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("-binaries: %q is not name=path", kv)
		}
		m[k] = v
	}
	return m, nil
}

func run(assets, kubeconfig string, nodes int, binaries, dir string, dereg, shutdownGrace time.Duration) error {
	if assets == "" {
		return fmt.Errorf("no control plane binaries: pass -assets or set KUBEBUILDER_ASSETS")
	}
	bins, err := parseBinaries(binaries)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c, err := cluster.Start(ctx, cluster.Options{Assets: assets, Dir: dir, Nodes: nodes, Binaries: bins,
		DeregistrationDelay: dereg, ShutdownGracePeriod: shutdownGrace, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Stop(); err != nil {
			slog.Error("while stopping the cluster", "err", err)
		}
	}()
	data, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		return err
	}
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		return fmt.Errorf("while writing the kubeconfig: %w", err)
	}
	var names []string
	for _, n := range c.Nodes {
		names = append(names, n.Name())
	}
	slog.Info("cluster ready", "apiserver", c.Config.Host, "kubeconfig", kubeconfig, "dir", c.Dir,
		"runs", "etcd, kube-apiserver, kube-controller-manager, kube-scheduler, node agents, LoadBalancer simulator",
		"nodes", strings.Join(names, ","), "pod_ips", "127.0.10.x", "lb_ips", "127.0.20.x", "binaries", bins)
	<-ctx.Done()
	slog.Info("stopping the cluster: terminating the pods", "shutdown_grace_period", shutdownGrace)
	return nil
}
