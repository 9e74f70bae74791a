// Package leadership runs two operator processes (cmd/manager, with the chart's leader election
// flags and timings) against one real kube-apiserver and checks, from the API server's own audit
// log, that a deposed leader's writes stop before the new leader writes.
package leadership

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/controllers"
	"github.com/tcpgateway/tcpgateway/test/k8stest"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
	"github.com/tcpgateway/tcpgateway/test/repo"
)

// TestMain stops the Kafka broker this test binary started, if it started one.
func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard()) // envtest's own client logs nothing worth keeping here
	os.Exit(kafkatest.Main(m))
}

const (
	leaseNamespace = "tcpgateway-system"
	leaseName      = "tcpgateway.io" // cmd/manager's LeaderElectionID
)

// auditPolicy records every write the two managers make, with the object the API server
// stored (its resourceVersion orders the writes: it is etcd's revision, one counter for all
// objects).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: RequestResponse
  users: ["manager-a", "manager-b"]
  verbs: ["create", "update", "patch", "delete"]
- level: None
`

// The Lease is deleted right after the leader renewed it, while a TCPGateway changes every
// 100 ms; the other manager takes the Lease. From the new leader's first write on, the
// deposed leader — which believes it leads until its renew deadline (10 s) runs out — must
// not complete a single write.
func TestDeposedLeaderWritesNothingAfterTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("needs etcd, kube-apiserver, Kafka and a build of cmd/manager")
	}
	bin := buildManager(t)
	dir := t.TempDir()
	policy, auditLog := filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := k8stest.NewEnvironment(k8stest.Assets(t))
	if err != nil {
		t.Fatal(err)
	}
	env.ControlPlane.GetAPIServer().Configure().
		Set("audit-policy-file", policy).
		Set("audit-log-path", auditLog).
		Set("audit-log-format", "json").
		Set("audit-log-mode", "blocking")
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		t.Fatalf("starting kube-apiserver and etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping kube-apiserver and etcd: %v", err)
		}
	})
	start := time.Now()

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	gwNS := fmt.Sprintf("lead-%d", time.Now().UnixNano()%1_000_000_000)
	for _, ns := range []string{leaseNamespace, gwNS} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	bootstrap := kafkatest.Bootstrap(t)
	gw := gateway(gwNS, bootstrap)
	if err := c.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		down, rcpt := gwNS+".chat.downlink", gwNS+".chat.receipts"
		dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer dcancel()
		_ = (&controllers.KafkaTopics{}).Delete(dctx, controllers.KafkaCluster{Brokers: []string{bootstrap}}, []string{down, rcpt})
	})

	a := startManager(t, env, bin, dir, "manager-a")
	holderA := waitLease(ctx, t, c, func(l *coordinationv1.Lease) bool { return holder(l) != "" })
	t.Logf("%v: manager-a leads", time.Since(start).Round(time.Millisecond))
	waitReconciled(ctx, t, c, gw)
	t.Logf("%v: manager-a reconciled the TCPGateway", time.Since(start).Round(time.Millisecond))
	b := startManager(t, env, bin, dir, "manager-b")

	churnCtx, stopChurn := context.WithCancel(ctx)
	churned := make(chan int, 1)
	go func() { churned <- churn(churnCtx, c, client.ObjectKeyFromObject(gw)) }()
	defer stopChurn()
	time.Sleep(time.Second) // let the leader write under churn for a while: workload, not synchronisation

	holderB := depose(ctx, t, c, holderA)
	t.Logf("%v: %s took the Lease from %s", time.Since(start).Round(time.Millisecond), holderB, holderA)

	// The deposed manager exits when its renew deadline runs out (controller-runtime's
	// "leader election lost"); everything it could write is written by then.
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the deposed manager did not exit within 20s of losing the Lease")
	}
	t.Logf("%v: manager-a exited", time.Since(start).Round(time.Millisecond))
	stopChurn()
	n := <-churned
	waitReconciled(ctx, t, c, gw) // the new leader catches up with the last change
	b.stop(t)
	t.Logf("%v: manager-b reconciled the last change and stopped", time.Since(start).Round(time.Millisecond))

	w := readAudit(t, auditLog)
	t.Logf("%d spec changes; %s", n, w.summary())
	if w.firstWrite("manager-a") == 0 || w.firstWrite("manager-b") == 0 {
		t.Fatalf("each manager must have written (a: %d writes, b: %d writes)", len(w.by["manager-a"]), len(w.by["manager-b"]))
	}
	if late := w.after("manager-a", w.firstWrite("manager-b")); len(late) > 0 {
		t.Errorf("the deposed leader completed %d writes after the new leader's first write:\n%s", len(late), strings.Join(late, "\n"))
	}
}

// gateway is a small TCPGateway on the test broker.
func gateway(ns, bootstrap string) *v1alpha1.TCPGateway {
	return &v1alpha1.TCPGateway{
		ObjectMeta: metav1.ObjectMeta{Name: "chat", Namespace: ns},
		Spec: v1alpha1.TCPGatewaySpec{
			Image: "tcpgateway:test",
			Auth: v1alpha1.Auth{JWT: &v1alpha1.JWTAuth{
				SecretRef: v1alpha1.LocalSecretReference{Name: "chat-jwt"}, HS256Key: "hs256.secret",
				Issuer: "https://auth.example.com", Audience: "chat",
			}},
			Kafka: v1alpha1.Kafka{BootstrapServers: []v1alpha1.HostPort{v1alpha1.HostPort(bootstrap)}, Partitions: 1, ReplicationFactor: 1},
		},
	}
}

// churn changes the TCPGateway's pod annotations (a new StatefulSet template and a new
// generation each time) every 100 ms until ctx ends, and returns how many changes it made.
func churn(ctx context.Context, c client.Client, key client.ObjectKey) int {
	n := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return n
		case <-tick.C:
		}
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			gw := &v1alpha1.TCPGateway{}
			if err := c.Get(ctx, key, gw); err != nil {
				return err
			}
			gw.Spec.PodAnnotations = map[string]string{"churn": strconv.Itoa(n)}
			return c.Update(ctx, gw)
		})
		if err == nil {
			n++
		}
	}
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// waitLease watches the Lease until ok accepts it, and returns its holder.
func waitLease(ctx context.Context, t *testing.T, c client.WithWatch, ok func(*coordinationv1.Lease) bool) string {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	w, err := c.Watch(wctx, &coordinationv1.LeaseList{}, client.InNamespace(leaseNamespace))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if l, isLease := ev.Object.(*coordinationv1.Lease); isLease && l.Name == leaseName && ev.Type != watch.Deleted && ok(l) {
			return holder(l)
		}
	}
	t.Fatalf("Lease %s/%s: not as expected within 20s", leaseNamespace, leaseName)
	return ""
}

// depose deletes the Lease each time holderA writes it (a renewal, or its re-creation after
// a deletion: client-go's elector creates a missing Lease), so that the other candidate finds
// it missing and takes it; it returns the new holder. Each deletion carries the
// resourceVersion of the renewal it follows.
func depose(ctx context.Context, t *testing.T, c client.WithWatch, holderA string) string {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	w, err := c.Watch(wctx, &coordinationv1.LeaseList{}, client.InNamespace(leaseNamespace))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	renewals := 0
	for ev := range w.ResultChan() {
		l, isLease := ev.Object.(*coordinationv1.Lease)
		if !isLease || l.Name != leaseName || ev.Type == watch.Deleted {
			continue
		}
		switch h := holder(l); h {
		case holderA:
			renewals++
			if renewals == 1 && ev.Type == watch.Added {
				continue // the state before the watch: wait for a renewal
			}
			rv := l.ResourceVersion
			err := c.Delete(wctx, l, client.Preconditions{ResourceVersion: &rv})
			if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
		case "":
		default:
			return h
		}
	}
	t.Fatalf("the other manager did not take the Lease within 20s")
	return ""
}

// waitReconciled waits until the operator has reconciled the TCPGateway's current generation.
func waitReconciled(ctx context.Context, t *testing.T, c client.Client, gw *v1alpha1.TCPGateway) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := &v1alpha1.TCPGateway{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(gw), got); err != nil {
			t.Fatal(err)
		}
		if got.Status.ObservedGeneration == got.Generation {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("observedGeneration %d, generation %d after 20s", got.Status.ObservedGeneration, got.Generation)
		}
		time.Sleep(50 * time.Millisecond) // poll interval: the status has no event to await here
	}
}

// buildManager compiles cmd/manager.
func buildManager(t *testing.T) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "manager")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/manager")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/manager: %v\n%s", err, b)
	}
	return out
}

// manager is one cmd/manager process.
type manager struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

// startManager runs cmd/manager as user name (a client certificate of its own, so the audit
// log tells the two apart), with the flags the chart gives it, until the test ends.
func startManager(t *testing.T, env *envtest.Environment, bin, dir, name string) *manager {
	t.Helper()
	u, err := env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, name+".kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	m := &manager{name: name, log: &syncBuffer{}, done: make(chan struct{})}
	m.cmd = exec.Command(bin, "--kubeconfig="+kubeconfig,
		"--leader-elect", "--leader-election-namespace="+leaseNamespace,
		"--metrics-bind-address=0", "--health-probe-bind-address=0")
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	t.Cleanup(func() {
		m.stop(t)
		if t.Failed() {
			t.Logf("%s log:\n%s", name, m.log.String())
		}
	})
	return m
}

// stop sends SIGTERM and waits for the exit, killing the process after 15 s.
func (m *manager) stop(t *testing.T) {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
		t.Errorf("%s did not exit within 15s of SIGTERM", m.name)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// auditEvent is the part of an audit.k8s.io/v1 Event the test reads.
type auditEvent struct {
	Stage     string                    `json:"stage"`
	Verb      string                    `json:"verb"`
	User      struct{ Username string } `json:"user"`
	ObjectRef struct {
		Resource, Subresource, Namespace, Name string
	} `json:"objectRef"`
	ResponseStatus struct{ Code int } `json:"responseStatus"`
	ResponseObject struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	} `json:"responseObject"`
	StageTimestamp time.Time `json:"stageTimestamp"`
}

// stateResources are the objects whose writes count: the TCPGateway (and its status) and
// what the operator owns. Leases (the election itself) and Events (records, not state) do not.
var stateResources = map[string]bool{
	"tcpgateways": true, "statefulsets": true, "services": true, "configmaps": true,
	"poddisruptionbudgets": true, "networkpolicies": true,
}

// write is one successful write, ordered by the revision it produced.
type write struct {
	rv   uint64
	desc string
}

// writes are the successful writes of each manager, and the revision of each one's first
// write of the Lease (manager-b's is the takeover).
type writes struct {
	by     map[string][]write
	leases map[string]uint64
}

func readAudit(t *testing.T, path string) writes {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	w := writes{by: map[string][]write{}, leases: map[string]uint64{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var ev auditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit log: %v", err)
		}
		r := ev.ObjectRef
		if ev.Stage != "ResponseComplete" || ev.ResponseStatus.Code >= 300 {
			continue
		}
		rv, err := strconv.ParseUint(ev.ResponseObject.Metadata.ResourceVersion, 10, 64)
		if err != nil {
			continue // a response without an object (a delete's Status): orders nothing
		}
		if r.Resource == "leases" && r.Name == leaseName {
			if w.leases[ev.User.Username] == 0 {
				w.leases[ev.User.Username] = rv
			}
			continue
		}
		if !stateResources[r.Resource] {
			continue
		}
		res := r.Resource
		if r.Subresource != "" {
			res += "/" + r.Subresource
		}
		w.by[ev.User.Username] = append(w.by[ev.User.Username], write{rv: rv,
			desc: fmt.Sprintf("  %s %s %s/%s → resourceVersion %d at %s", ev.Verb, res, r.Namespace, r.Name, rv, ev.StageTimestamp.Format("15:04:05.000000"))})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return w
}

// firstWrite is the revision of user's first write, 0 without one.
func (w writes) firstWrite(user string) uint64 {
	var first uint64
	for _, x := range w.by[user] {
		if first == 0 || x.rv < first {
			first = x.rv
		}
	}
	return first
}

// after lists user's writes that produced a revision after rv.
func (w writes) after(user string, rv uint64) []string {
	var out []string
	for _, x := range w.by[user] {
		if x.rv > rv {
			out = append(out, x.desc)
		}
	}
	return out
}

func (w writes) summary() string {
	return fmt.Sprintf("manager-a (deposed) %d writes, manager-b (new leader) %d writes; manager-a writes after manager-b took the Lease: %d, after manager-b's first write: %d",
		len(w.by["manager-a"]), len(w.by["manager-b"]), len(w.after("manager-a", w.leases["manager-b"])),
		len(w.after("manager-a", w.firstWrite("manager-b"))))
}
