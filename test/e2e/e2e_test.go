//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/controllers"
	"github.com/tcpgateway/tcpgateway/gateway/client"
	"github.com/tcpgateway/tcpgateway/gateway/protocol/pb"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/test/cluster"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
	"github.com/tcpgateway/tcpgateway/test/repo"
)

const (
	ns     = "e2e"
	gwName = "chat"
	image  = "example.test/tcpgateway:e2e"

	// Bounds of the test's waits.
	readyTimeout  = 3 * time.Minute
	deleteTimeout = 90 * time.Second
	pushTimeout   = 30 * time.Second
	pollEvery     = 200 * time.Millisecond
)

// hs256 is the shared HMAC key (at least 32 bytes).
var hs256 = []byte("e2e-test-hs256-secret-0123456789abcdef")

// buildGateway compiles ./cmd/gateway into a temporary directory.
func buildGateway(t *testing.T) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "gateway")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/gateway")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/gateway: %v\n%s", err, b)
	}
	return out
}

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// startOperator runs the reconciler in-process, as cmd/manager wires it, with metrics, health
// probes and leader election off. It stops when the test ends.
func startOperator(t *testing.T, c *cluster.Cluster, scheme *runtime.Scheme) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "operator.log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(lf), zap.UseDevMode(true)))
	mgr, err := ctrl.NewManager(c.Config, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
		Cache:                  cache.Options{ByObject: controllers.OwnedCacheOptions()},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &controllers.TCPGatewayReconciler{
		Client:       mgr.GetClient(),
		Scheme:       mgr.GetScheme(),
		Recorder:     mgr.GetEventRecorder("tcpgateway-operator"),
		Topics:       &controllers.KafkaTopics{DialTimeout: 5 * time.Second},
		KafkaTimeout: controllers.DefaultKafkaTimeout,
	}
	if err := r.SetupWithManager(mgr, 2); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("operator: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("operator did not stop within 30s")
		}
		_ = lf.Close()
		if t.Failed() {
			t.Logf("operator log (tail):\n%s", tail(logPath, 80))
		}
	})
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

// echoServer answers every call with its method path, user and payload.
func echoServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		fmt.Fprintf(w, "echo %s: %s", r.URL.Path, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func token(t *testing.T, user string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(hs256)
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

// dumpPods logs the gateway pods' status and the tail of their container logs.
func dumpPods(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("listing pods: %v", err)
		return
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		t.Logf("pod %s node=%s phase=%s reason=%q message=%q ip=%s", p.Name, p.Spec.NodeName,
			p.Status.Phase, p.Status.Reason, p.Status.Message, p.Status.PodIP)
		for _, n := range c.Nodes {
			if n.Name() == p.Spec.NodeName {
				t.Logf("pod %s log (tail):\n%s", p.Name, tail(n.LogPath(p, p.Spec.Containers[0].Name), 40))
			}
		}
	}
}

func TestApplyConnectPushDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("whole system; skipped under -short")
	}
	t0 := time.Now()
	gatewayBin := buildGateway(t)
	t.Logf("built the gateway in %v", time.Since(t0).Round(time.Millisecond))
	brokers := kafkatest.Bootstrap(t)
	echoURL := echoServer(t)

	t1 := time.Now()
	c := cluster.StartForTest(t, cluster.Options{
		Nodes:               2,
		Binaries:            map[string]string{"/usr/local/bin/gateway": gatewayBin},
		DeregistrationDelay: 300 * time.Millisecond,
		Dir:                 os.Getenv("E2E_CLUSTER_DIR"),
	})
	t.Logf("cluster started in %v", time.Since(t1).Round(time.Millisecond))
	scheme := newScheme(t)
	startOperator(t, c, scheme)
	k, err := crclient.New(c.Config, crclient.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	// 1. Apply: namespace, Secret, TCPGateway.
	for _, o := range []crclient.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "chat-jwt", Namespace: ns},
			Data:       map[string][]byte{"hs256.secret": hs256},
		},
		&v1alpha1.TCPGateway{
			ObjectMeta: metav1.ObjectMeta{Name: gwName, Namespace: ns},
			Spec: v1alpha1.TCPGatewaySpec{
				Replicas: ptr.To[int32](2),
				Image:    image,
				Auth: v1alpha1.Auth{JWT: &v1alpha1.JWTAuth{
					SecretRef: v1alpha1.LocalSecretReference{Name: "chat-jwt"},
					HS256Key:  "hs256.secret",
				}},
				Routes: []v1alpha1.Route{{Service: "echo", URL: echoURL, Timeout: "5s"}},
				Kafka: v1alpha1.Kafka{
					BootstrapServers:  []v1alpha1.HostPort{v1alpha1.HostPort(brokers)},
					Partitions:        3,
					ReplicationFactor: 1,
				},
				Drain: v1alpha1.Drain{
					DeregistrationDelay: "500ms",
					SpreadWindow:        "1s",
					FlushTimeout:        "1s",
					HardDeadline:        "5s",
				},
				Service: v1alpha1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
			},
		},
	} {
		if err := k.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	applied := time.Now()

	// 2. Ready=True with an address.
	gw := &v1alpha1.TCPGateway{}
	took, ok := poll(ctx, readyTimeout, func(ctx context.Context) bool {
		if err := k.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: gwName}, gw); err != nil {
			return false
		}
		return meta.IsStatusConditionTrue(gw.Status.Conditions, v1alpha1.ConditionReady) && gw.Status.Address != ""
	})
	if !ok {
		t.Logf("status: %+v", gw.Status)
		dumpPods(t, c)
		t.Fatalf("TCPGateway not Ready with an address after %v", took.Round(time.Millisecond))
	}
	t.Logf("TCPGateway Ready after %v: address=%s ready=%s kafka=%+v", took.Round(time.Millisecond),
		gw.Status.Address, gw.Status.ReadyText, gw.Status.Kafka)
	if gw.Status.Kafka == nil || gw.Status.Kafka.DownlinkTopic != ns+"."+gwName+".downlink" {
		t.Fatalf("status.kafka = %+v, want downlinkTopic %s.%s.downlink", gw.Status.Kafka, ns, gwName)
	}
	addr := net.JoinHostPort(gw.Status.Address, strconv.Itoa(int(gw.Spec.Port)))

	// 3. Connect two clients through the load balancer.
	type app struct {
		c      *client.Client
		pushes chan *pb.Push
	}
	connect := func(user string) *app {
		a := &app{pushes: make(chan *pb.Push, 16)}
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		var err error
		a.c, err = client.Connect(cctx, client.Options{
			Addr:     addr,
			Token:    token(t, user),
			DeviceID: user + "-device",
			OnPush: func(p *pb.Push) {
				select {
				case a.pushes <- p:
				default:
				}
			},
		})
		if err != nil {
			t.Fatalf("client %s: connect to %s: %v", user, addr, err)
		}
		t.Cleanup(func() { _ = a.c.Close() })
		return a
	}
	t2 := time.Now()
	alice, bob := connect("alice"), connect("bob")
	t.Logf("two clients connected to %s in %v", addr, time.Since(t2).Round(time.Millisecond))

	resp, err := alice.c.Request(ctx, "echo", "say", []byte("hello"))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if resp.GetCode() != pb.ErrorCode_ERROR_CODE_OK || string(resp.GetPayload()) != "echo /say: hello" {
		t.Fatalf("request answered code=%v status=%d payload=%q", resp.GetCode(), resp.GetStatus(), resp.GetPayload())
	}

	pub, err := push.New(ctx, push.Options{Brokers: []string{brokers}, Topic: gw.Status.Kafka.DownlinkTopic})
	if err != nil {
		t.Fatal(err)
	}
	expect := func(a *app, who, payload string) {
		t.Helper()
		timer := time.NewTimer(pushTimeout)
		defer timer.Stop()
		for {
			select {
			case p := <-a.pushes:
				if string(p.GetPayload()) == payload {
					return
				}
				t.Errorf("%s got unexpected push %q while waiting for %q", who, p.GetPayload(), payload)
			case <-timer.C:
				t.Fatalf("%s did not get push %q within %v", who, payload, pushTimeout)
			}
		}
	}
	t3 := time.Now()
	if _, err := pub.Push(ctx, push.Message{Target: push.User("bob"), Payload: []byte("for bob")}); err != nil {
		t.Fatal(err)
	}
	expect(bob, "bob", "for bob")
	t.Logf("user push delivered in %v", time.Since(t3).Round(time.Millisecond))
	select {
	case p := <-alice.pushes:
		t.Fatalf("alice got bob's push %q", p.GetPayload())
	default:
	}
	if _, err := pub.Push(ctx, push.Message{Target: push.All(), Payload: []byte("to all")}); err != nil {
		t.Fatal(err)
	}
	expect(alice, "alice", "to all")
	expect(bob, "bob", "to all")
	_ = alice.c.Close()
	_ = bob.c.Close()

	// 4. Delete: the garbage collector removes the owned objects, the pods and their processes.
	t4 := time.Now()
	if err := k.Delete(ctx, gw); err != nil {
		t.Fatal(err)
	}
	gone := func(obj crclient.Object, name string) func(context.Context) bool {
		return func(ctx context.Context) bool {
			err := k.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: name}, obj)
			return apierrors.IsNotFound(err)
		}
	}
	for _, w := range []struct {
		what string
		cond func(context.Context) bool
	}{
		{"TCPGateway", gone(&v1alpha1.TCPGateway{}, gwName)},
		{"StatefulSet", gone(&appsv1.StatefulSet{}, gwName)},
		{"client Service", gone(&corev1.Service{}, gwName)},
		{"headless Service", gone(&corev1.Service{}, gwName+"-headless")},
		{"ConfigMap", gone(&corev1.ConfigMap{}, gwName+"-config")},
		{"PodDisruptionBudget", gone(&policyv1.PodDisruptionBudget{}, gwName)},
		{"pods", func(ctx context.Context) bool {
			var pods corev1.PodList
			return k.List(ctx, &pods, crclient.InNamespace(ns)) == nil && len(pods.Items) == 0
		}},
		{"gateway processes", func(context.Context) bool {
			for _, n := range c.Nodes {
				if n.Running() != 0 {
					return false
				}
			}
			return true
		}},
	} {
		if d, ok := poll(ctx, deleteTimeout-time.Since(t4), w.cond); !ok {
			dumpPods(t, c)
			t.Fatalf("%s still present %v after the delete", w.what, d.Round(time.Millisecond))
		}
		t.Logf("%s gone %v after the delete", w.what, time.Since(t4).Round(time.Millisecond))
	}
	t.Logf("total from apply to everything gone: %v", time.Since(applied).Round(time.Millisecond))
}
