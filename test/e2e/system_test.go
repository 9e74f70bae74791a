//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/golang-jwt/jwt/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/test/cluster"
	"github.com/tcpgateway/tcpgateway/test/helmtest"
	"github.com/tcpgateway/tcpgateway/test/k8stest"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
	"github.com/tcpgateway/tcpgateway/test/repo"
)

// Bounds of the tests' waits.
const (
	readyTimeout  = 3 * time.Minute
	deleteTimeout = 90 * time.Second
	pushTimeout   = 30 * time.Second
	pollEvery     = 200 * time.Millisecond
	// lbDeregistration is the simulated cloud LB's delay before it stops sending new
	// connections to a pod that is no longer ready; the gateways' deregistration delay
	// (gatewaySpec) is longer, as the operator's docs ask.
	lbDeregistration = 300 * time.Millisecond
	image            = "example.test/tcpgateway:e2e"
)

// hs256 is the shared HMAC key (at least 32 bytes).
var hs256 = []byte("e2e-test-hs256-secret-0123456789abcdef")

// system is the whole local system the tests share.
type system struct {
	cluster *cluster.Cluster
	k       crclient.Client
	brokers string
	assets  string // hack/k8s.sh's binaries, kubectl among them
	echoURL string
	dir     string // binaries
	root    string // the repository (charts/)
	helm    string

	echo *exec.Cmd // test/echobackend, the uplink target
}

// The operator, installed with the project's Helm chart and run by the node agents as a pod.
const (
	operatorNamespace = "tcpgateway-system"
	operatorRelease   = "tcpgateway"
)

var (
	sysOnce sync.Once
	sys     *system
	sysErr  error
)

// shared returns the system, starting it on first use.
func shared(t *testing.T) *system {
	t.Helper()
	if testing.Short() {
		t.Skip("whole system; skipped under -short")
	}
	brokers, assets, helm := kafkatest.Bootstrap(t), k8stest.Assets(t), helmtest.Binary(t)
	sysOnce.Do(func() {
		start := time.Now()
		sys, sysErr = startSystem(brokers, assets, helm)
		if sysErr == nil {
			t.Logf("system started in %v (binaries, control plane, node agents, LB simulator, operator installed with helm) in %s",
				time.Since(start).Round(time.Millisecond), sys.dir)
		}
	})
	if sysErr != nil {
		t.Fatalf("starting the system: %v", sysErr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			sys.dumpPods(t, operatorNamespace)
		}
	})
	return sys
}

func startSystem(brokers, assets, helm string) (_ *system, err error) {
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	// The cluster's envtest control plane logs through controller-runtime; without a logger
	// it prints a stack trace after 30 s. Its own output goes to the cluster's log files.
	crlog.SetLogger(logr.Discard())
	s := &system{brokers: brokers, assets: assets, root: root, helm: helm}
	if s.dir, err = os.MkdirTemp("", "tcpgw-e2e-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = s.stop()
		}
	}()
	build := exec.Command("go", "build", "-o", s.dir+"/", "./cmd/gateway", "./cmd/manager", "./test/echobackend")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	if err := s.startEcho(); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s.cluster, err = cluster.Start(ctx, cluster.Options{
		Assets: assets,
		Nodes:  2,
		Binaries: map[string]string{
			"/usr/local/bin/gateway": filepath.Join(s.dir, "gateway"),
			"/usr/local/bin/manager": filepath.Join(s.dir, "manager"),
		},
		DeregistrationDelay: lbDeregistration,
		HPASyncPeriod:       hpaSyncPeriod,
		Dir:                 os.Getenv("E2E_CLUSTER_DIR"),
	})
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if s.k, err = crclient.New(s.cluster.Config, crclient.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	return s, s.installOperator(ctx)
}

// startEcho runs the example backend as a process on a free loopback port and waits until it
// accepts connections.
func (s *system) startEcho() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	s.echo = exec.Command(filepath.Join(s.dir, "echobackend"), "-listen", addr)
	if s.echo.Stderr, err = os.Create(filepath.Join(s.dir, "echobackend.log")); err != nil {
		return err
	}
	if err := s.echo.Start(); err != nil {
		return err
	}
	s.echoURL = "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, ok := poll(ctx, 10*time.Second, func(ctx context.Context) bool {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}); !ok {
		return fmt.Errorf("the echo backend does not accept connections on %s", addr)
	}
	return nil
}

// installOperator installs the chart as a user would and waits for the operator's
// Deployment to be available: its pod runs cmd/manager as a process with the chart's
// arguments, probes and ServiceAccount (so the chart's RBAC is what it gets). One replica:
// pods share this machine's network, and the chart's probe and metrics ports are fixed.
// --take-ownership: the cluster starts with the CRD installed (test/k8stest), which the
// chart then adopts and upgrades, as after an upgrade from chart 0.1.0. With the custom
// metrics API (customMetrics.enabled): the HPAs of TestAutoscalingCycle read it through
// kube-apiserver's aggregator.
func (s *system) installOperator(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, s.helm, "install", operatorRelease, filepath.Join(s.root, "charts", "tcpgateway"),
		"--kubeconfig", s.cluster.Kubeconfig, "--namespace", operatorNamespace, "--create-namespace", "--take-ownership",
		"--set", "replicaCount=1", "--set", "image.repository=example.test/tcpgateway", "--set", "image.tag=e2e",
		"--set", "customMetrics.enabled=true",
		"--wait", "--timeout", "3m")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("helm install: %v\n%s", err, out)
	}
	return nil
}

// stop ends the cluster (its node agents kill what pods remain, the operator's among them)
// and the echo backend.
func stopSystem() error {
	if sys == nil {
		return nil
	}
	return sys.stop()
}

func (s *system) stop() error {
	var errs []error
	if s.cluster != nil {
		errs = append(errs, s.cluster.Stop())
	}
	if s.echo != nil {
		_ = s.echo.Process.Kill()
		_ = s.echo.Wait()
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
	return errors.Join(errs...)
}

// gatewaySpec is a TCPGateway spec for the shared system: JWT auth with the "jwt" Secret of
// its namespace, the echo route, this broker, a short drain behind the LB.
func (s *system) gatewaySpec(replicas int32) v1alpha1.TCPGatewaySpec {
	return v1alpha1.TCPGatewaySpec{
		Replicas: ptr.To(replicas),
		Image:    image,
		Auth: v1alpha1.Auth{JWT: &v1alpha1.JWTAuth{
			SecretRef: v1alpha1.LocalSecretReference{Name: "jwt"},
			HS256Key:  "hs256.secret",
			Issuer:    testIssuer,
			Audience:  testAudience,
		}},
		Routes: []v1alpha1.Route{{Service: "echo", URL: s.echoURL, Timeout: "5s"}},
		Kafka: v1alpha1.Kafka{
			BootstrapServers:  []v1alpha1.HostPort{v1alpha1.HostPort(s.brokers)},
			Partitions:        3,
			ReplicationFactor: 1,
		},
		Drain: v1alpha1.Drain{
			DeregistrationDelay: "500ms",
			SpreadWindow:        "1s",
			FlushTimeout:        "2s",
			HardDeadline:        "8s",
		},
		Service: v1alpha1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
	}
}

// apply creates namespace ns with the JWT Secret, the extra objects (more Secrets the spec
// references, created in ns) and a TCPGateway, and waits until it is Ready with an address; it
// returns the gateway and the address clients connect to.
func (s *system) apply(ctx context.Context, t *testing.T, ns, name string, spec v1alpha1.TCPGatewaySpec, extra ...crclient.Object) (*v1alpha1.TCPGateway, string) {
	t.Helper()
	objs := []crclient.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "jwt", Namespace: ns},
			Data:       map[string][]byte{"hs256.secret": hs256},
		},
	}
	for _, o := range extra {
		o.SetNamespace(ns)
		objs = append(objs, o)
	}
	objs = append(objs, &v1alpha1.TCPGateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec})
	for _, o := range objs {
		if err := s.k.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	gw := &v1alpha1.TCPGateway{}
	took, ok := poll(ctx, readyTimeout, func(ctx context.Context) bool {
		if err := s.k.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: name}, gw); err != nil {
			return false
		}
		return meta.IsStatusConditionTrue(gw.Status.Conditions, v1alpha1.ConditionReady) && gw.Status.Address != ""
	})
	if !ok {
		t.Logf("status: %+v", gw.Status)
		s.dumpPods(t, ns)
		t.Fatalf("TCPGateway %s/%s not Ready with an address after %v", ns, name, took.Round(time.Millisecond))
	}
	t.Logf("TCPGateway %s/%s Ready after %v: address=%s ready=%s", ns, name, took.Round(time.Millisecond),
		gw.Status.Address, gw.Status.ReadyText)
	return gw, net.JoinHostPort(gw.Status.Address, strconv.Itoa(int(gw.Spec.Port)))
}

// terminations lists how the deleted pods of namespace ns ended, from every node agent.
func (s *system) terminations(ns string) []cluster.Termination {
	var out []cluster.Termination
	for _, n := range s.cluster.Nodes {
		for _, tm := range n.Terminations() {
			if tm.Namespace == ns {
				out = append(out, tm)
			}
		}
	}
	return out
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// The issuer and audience the test TCPGateway requires and the test tokens carry.
const (
	testIssuer   = "https://auth.test"
	testAudience = "tcpgw-test"
)

// token mints a client token for user with group tags.
func token(t testing.TB, user string, groups []string) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": user, "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()}
	if len(groups) > 0 {
		claims["groups"] = groups
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(hs256)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// poll checks cond every pollEvery until it holds or timeout passes; it returns the time
// taken and whether cond held.
func poll(ctx context.Context, timeout time.Duration, cond func(context.Context) bool) (time.Duration, bool) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if cond(ctx) {
			return time.Since(start), true
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false
		case <-time.After(pollEvery):
		}
	}
}

// dumpPods logs the pods of ns and the tail of their container logs.
func (s *system) dumpPods(t *testing.T, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, err := s.cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("listing pods: %v", err)
		return
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		t.Logf("pod %s node=%s phase=%s reason=%q message=%q ip=%s", p.Name, p.Spec.NodeName,
			p.Status.Phase, p.Status.Reason, p.Status.Message, p.Status.PodIP)
		for _, n := range s.cluster.Nodes {
			if n.Name() == p.Spec.NodeName {
				t.Logf("pod %s log (tail):\n%s", p.Name, tail(n.LogPath(p, p.Spec.Containers[0].Name), 40))
			}
		}
	}
}

// checkGraceful asserts that every pod ended by draining: exit 0 within its grace period.
func checkGraceful(t *testing.T, terms []cluster.Termination) {
	t.Helper()
	for _, tm := range terms {
		if tm.GraceKilled || tm.ExitCode != 0 {
			t.Errorf("pod %s/%s (%s) ended with exit code %d after %v, SIGKILLed at the end of its grace period: %v",
				tm.Namespace, tm.Name, tm.UID, tm.ExitCode, tm.Took.Round(time.Millisecond), tm.GraceKilled)
		}
	}
}
