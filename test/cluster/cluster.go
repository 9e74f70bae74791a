// Package cluster runs a whole Kubernetes system on one machine, on loopback only, for
// end-to-end tests and `make demo`: a real etcd and kube-apiserver (through envtest), a
// real kube-controller-manager and kube-scheduler as processes, NodeAgents that play the
// kubelet by running pods as local processes on their own 127.0.x.y address, and an
// LBSimulator that implements Services of type LoadBalancer with test/lb.
//
// Nothing here contacts a non-loopback address: the Service and cluster CIDRs the control
// plane is given are never routed, pods get 127.0.10.x addresses and load balancers
// 127.0.20.x. kube-apiserver's own traffic to Services (its aggregator's, to an APIService)
// goes through a ServiceProxy on 127.0.0.1, the stand-in for kube-proxy; the aggregator's
// front-proxy client certificate comes from a CA made at start.
package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tcpgateway/tcpgateway/test/k8stest"
	"github.com/tcpgateway/tcpgateway/test/lb"
)

// Service and cluster CIDRs handed to the control plane. Nothing routes to them: they only
// satisfy the API server's and controller-manager's allocators.
const (
	ServiceCIDR = "10.251.0.0/16"
	ClusterCIDR = "10.252.0.0/16"
)

// ControllerManagerControllers are the kube-controller-manager controllers the cluster runs:
// what the system needs and nothing more, which also keeps a 2-core machine responsive.
//
// Not the EndpointSlice and Endpoints controllers: pods have loopback addresses, which
// kube-apiserver refuses in both ("may not be in the loopback range"), so they could publish
// no pod and only filled the events with a FailedToUpdateEndpointSlices (and
// FailedToUpdateEndpoint) warning per Service and sync, burying the operator's events.
// Nothing here reads them: the LB simulator computes backends from Pods, the StatefulSet
// controller needs only the headless Service's name, and there is no kube-proxy or DNS. The
// cost: no EndpointSlice or Endpoints object exists, so code that would read them cannot be
// tried on this cluster. (The ServiceProxy publishes FQDN EndpointSlices for ClusterIP
// Services with a selector, only so that the aggregator finds an APIService's Service
// available; see ServiceProxy.)
//
// The HorizontalPodAutoscaler controller runs, with the sync period of Options.HPASyncPeriod;
// it scales on the metrics APIs the cluster's APIServices serve (such as the operator's
// custom metrics API, reached through the ServiceProxy).
var ControllerManagerControllers = []string{
	"statefulset-controller", "replicaset-controller", "deployment-controller",
	"garbage-collector-controller", "node-lifecycle-controller", "pod-garbage-collector-controller",
	"namespace-controller", "serviceaccount-controller", "serviceaccount-token-controller",
	"disruption-controller", "job-controller", "ttl-after-finished-controller",
	"horizontal-pod-autoscaler-controller",
}

// DefaultHPASyncPeriod is the HPA controller's sync period unless Options.HPASyncPeriod says
// otherwise: kube-controller-manager's own default.
const DefaultHPASyncPeriod = 15 * time.Second

// componentStartTimeout bounds how long the controller-manager and scheduler may take to
// answer their health checks.
const componentStartTimeout = 60 * time.Second

// Options configure Start.
type Options struct {
	// Assets is the directory holding etcd, kube-apiserver, kube-controller-manager and
	// kube-scheduler (hack/k8s.sh). Required by Start; StartForTest fills it in.
	Assets string
	// Dir holds kubeconfigs, component logs and the node agents' pod folders. Empty means
	// a new temporary directory, removed by Stop.
	Dir string
	// Nodes is the number of node agents, named node-1..node-N; zero means 1.
	Nodes int
	// Binaries maps images and commands to local executables; see NodeOptions.Binaries.
	Binaries map[string]string
	// RestartBackoff is the first delay before restarting an exited container; it doubles
	// up to MaxRestartBackoff. Zero means 1s (the kubelet uses 10s).
	RestartBackoff time.Duration
	// DeregistrationDelay of every simulated load balancer (see test/lb).
	DeregistrationDelay time.Duration
	// LBBalance of every simulated load balancer (see test/lb): least connections by default.
	LBBalance lb.Balance
	// ShutdownGracePeriod of every node agent (see NodeOptions): zero, Stop kills the pods.
	ShutdownGracePeriod time.Duration
	// Logger receives the agents' and simulator's events; nil discards them.
	Logger *slog.Logger
	// HPASyncPeriod is kube-controller-manager's --horizontal-pod-autoscaler-sync-period: how
	// often each HorizontalPodAutoscaler reads its metrics and scales. Zero means
	// DefaultHPASyncPeriod; tests shorten it.
	HPASyncPeriod time.Duration
}

// Cluster is a running system. Stop it exactly once.
type Cluster struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Kubeconfig is the path of an admin kubeconfig file.
	Kubeconfig string
	// Client is a typed clientset for Config.
	Client kubernetes.Interface
	// Dir is the cluster's working directory (logs: controller-manager.log, scheduler.log).
	Dir string
	// Nodes are the node agents, in name order.
	Nodes []*NodeAgent
	// LB is the LoadBalancer Service simulator.
	LB *LBSimulator
	// IPs allocates pod addresses for all nodes.
	IPs *IPAllocator
	// Services carries kube-apiserver's traffic to Services (see ServiceProxy).
	Services *ServiceProxy

	env       *envtest.Environment
	procs     []*process
	cancel    context.CancelFunc
	removeDir bool
}

// StartForTest starts a cluster for t, skipping under -short, and stops it in t.Cleanup.
func StartForTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a whole control plane and real processes; skipped under -short")
	}
	if opts.Assets == "" {
		opts.Assets = k8stest.Assets(t)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Logger == nil {
		w := &testWriter{t: t}
		// Registered before the stop below, so it runs after it: lines logged by goroutines
		// that outlive the test are dropped instead of panicking in t.Log.
		t.Cleanup(func() { w.done.Store(true) })
		opts.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	c, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stopping the cluster: %v", err)
		}
	})
	return c
}

// testWriter sends log lines to t.Log until the test ends.
type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(string(p))
	}
	return len(p), nil
}

// Start brings up the control plane, controller-manager, scheduler, node agents and LB
// simulator. On error everything started so far is stopped.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if opts.Assets == "" {
		return nil, errors.New("cluster: Options.Assets is required (hack/k8s.sh prints it)")
	}
	if opts.Nodes <= 0 {
		opts.Nodes = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c = &Cluster{Dir: opts.Dir}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "tcpgw-cluster-"); err != nil {
			return nil, err
		}
		c.removeDir = true
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
			c = nil
		}
	}()

	env, err := k8stest.NewEnvironment(opts.Assets)
	if err != nil {
		return c, err
	}
	if c.Services, err = listenServiceProxy(opts.Logger.With("component", "service-proxy")); err != nil {
		return c, err
	}
	apiFlags, err := aggregatorFlags(c.Dir, c.Services)
	if err != nil {
		return c, err
	}
	args := env.ControlPlane.GetAPIServer().Configure()
	args.Set("service-cluster-ip-range", ServiceCIDR)
	for k, v := range apiFlags {
		args.Set(k, v)
	}
	c.env = env
	if _, err := env.Start(); err != nil {
		return c, fmt.Errorf("starting etcd and kube-apiserver: %w", err)
	}
	admin, err := env.AddUser(envtest.User{Name: "cluster-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return c, fmt.Errorf("adding the admin user: %w", err)
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		return c, err
	}
	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kc, 0o600); err != nil {
		return c, err
	}
	c.Config = admin.Config()
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return c, err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	// Its own client, without warnings: kube-apiserver warns at every write of an FQDN
	// EndpointSlice that the address type is deprecated.
	quiet := rest.CopyConfig(c.Config)
	quiet.WarningHandler = rest.NoWarnings{}
	proxyClient, err := kubernetes.NewForConfig(quiet)
	if err != nil {
		return c, err
	}
	if err := c.Services.start(runCtx, proxyClient); err != nil {
		return c, err
	}

	hpaSync := opts.HPASyncPeriod
	if hpaSync <= 0 {
		hpaSync = DefaultHPASyncPeriod
	}
	saKey := filepath.Join(env.ControlPlane.APIServer.CertDir, "sa-signer.key")
	if err := c.startComponent(ctx, opts.Assets, "kube-controller-manager", []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--authentication-kubeconfig=" + c.Kubeconfig,
		"--authorization-kubeconfig=" + c.Kubeconfig,
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--service-account-private-key-file=" + saKey,
		"--controllers=" + strings.Join(ControllerManagerControllers, ","),
		"--allocate-node-cidrs=false",
		"--cluster-cidr=" + ClusterCIDR,
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--concurrent-statefulset-syncs=2",
		"--horizontal-pod-autoscaler-sync-period=" + hpaSync.String(),
		"--cert-dir=" + filepath.Join(c.Dir, "kcm-certs"),
	}); err != nil {
		return c, err
	}
	if err := c.startComponent(ctx, opts.Assets, "kube-scheduler", []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--authentication-kubeconfig=" + c.Kubeconfig,
		"--authorization-kubeconfig=" + c.Kubeconfig,
		"--leader-elect=false",
		"--cert-dir=" + filepath.Join(c.Dir, "scheduler-certs"),
	}); err != nil {
		return c, err
	}

	c.IPs = NewIPAllocator()
	for i := 1; i <= opts.Nodes; i++ {
		name := "node-" + strconv.Itoa(i)
		n, err := StartNodeAgent(runCtx, c.Client, NodeOptions{
			Name:                name,
			Dir:                 filepath.Join(c.Dir, "nodes", name),
			Binaries:            opts.Binaries,
			IPs:                 c.IPs,
			RestartBackoff:      opts.RestartBackoff,
			Logger:              opts.Logger.With("node", name),
			APIServer:           &APIServerAccess{Host: c.Config.Host, CAData: c.Config.CAData},
			ShutdownGracePeriod: opts.ShutdownGracePeriod,
		})
		if err != nil {
			return c, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	if c.LB, err = StartLBSimulator(runCtx, c.Client, LBOptions{
		DeregistrationDelay: opts.DeregistrationDelay,
		Balance:             opts.LBBalance,
		Logger:              opts.Logger.With("component", "lbsim"),
	}); err != nil {
		return c, err
	}
	return c, nil
}

// startComponent runs a control plane binary bound to 127.0.0.1 on a free port and waits
// for its /healthz.
func (c *Cluster) startComponent(ctx context.Context, assets, name string, args []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	args = append(args, "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port), "-v=1")
	p, err := startProcess(name, filepath.Join(assets, name), args, filepath.Join(c.Dir, name+".log"))
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	// The component serves a self-signed certificate on loopback; only its health is read.
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health check
	}}
	url := "https://127.0.0.1:" + strconv.Itoa(port) + "/healthz"
	healthy := func() bool {
		select {
		case <-p.done:
			return false
		default:
		}
		resp, err := hc.Get(url)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if err := waitFor(ctx, componentStartTimeout, 200*time.Millisecond, func() bool {
		select {
		case <-p.done:
			return true
		default:
		}
		return healthy()
	}); err != nil || !healthy() {
		return fmt.Errorf("%s did not become healthy (log: %s)", name, filepath.Join(c.Dir, name+".log"))
	}
	return nil
}

// Stop stops the node agents (all at once: each terminates or kills its pods, see
// Options.ShutdownGracePeriod), the LB simulator (after the nodes, so that draining pods reach
// their clients through it), the scheduler, the controller-manager, kube-apiserver and etcd,
// in that order.
func (c *Cluster) Stop() error {
	var errs []error
	for _, n := range c.Nodes {
		n.refuseNewPods()
	}
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Go(n.Stop)
	}
	wg.Wait()
	if c.LB != nil {
		c.LB.Stop()
	}
	if c.Services != nil {
		c.Services.stop()
	}
	if c.cancel != nil {
		c.cancel()
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(5 * time.Second)
	}
	c.procs = nil
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping kube-apiserver and etcd: %w", err))
		}
		c.env = nil
	}
	if c.removeDir {
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
