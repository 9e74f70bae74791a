package cluster

import (
	"context"
	"fmt"
	"k8s.io/client-go/util/retry"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// Lease timing: the node lifecycle controller marks a node unreachable (and taints it) when
// its Lease is older than --node-monitor-grace-period (50s by default).
const (
	leaseDuration = 40 * time.Second
	leaseRenew    = 10 * time.Second
)

// NodeOptions configure a NodeAgent.
type NodeOptions struct {
	// Name of the Node object.
	Name string
	// Dir holds one folder per pod: <Dir>/pods/<namespace>_<name>_<uid>/ with the pod's
	// volumes under volumes/<volume name>/ (emptyDirs are links to short folders in the
	// system's temporary folder, removed with the pod) and each container's output in
	// <container>.log.
	Dir string
	// Binaries maps what a container runs to a local executable (images are not runnable
	// here). A key starting with "/" matches the container's command[0] exactly; any other
	// key matches the image, exactly or followed by ":" (tag) or "@" (digest). The command
	// match wins. The matched executable replaces command[0] (or, when the container has
	// no command, runs the image's entrypoint with args). A container matching no key is
	// refused: the pod is set to Failed with reason UnmappedBinary.
	Binaries map[string]string
	// IPs allocates pod addresses; nil means a private allocator (give all agents of one
	// cluster the same one).
	IPs *IPAllocator
	// RestartBackoff is the first restart delay (doubling up to MaxRestartBackoff); zero
	// means 1s.
	RestartBackoff time.Duration
	// Logger receives pod lifecycle events; nil discards them.
	Logger *slog.Logger
	// APIServer: pods get their service account's credentials (see mountServiceAccount);
	// nil: pods get none, whatever automountServiceAccountToken says.
	APIServer *APIServerAccess
	// ShutdownGracePeriod is the kubelet's shutdownGracePeriod (graceful node shutdown): at
	// Stop, every running pod is terminated as on deletion (preStop hook, SIGTERM, SIGKILL when
	// its grace period runs out) with the smaller of its terminationGracePeriodSeconds and this
	// as grace period, and reported Failed with reason Terminated. Zero: Stop SIGKILLs them at
	// once, as when the machine goes away.
	ShutdownGracePeriod time.Duration
}

// shutdownSlack is how long Stop waits, beyond ShutdownGracePeriod, for the pods to be
// reported and their processes reaped before it cancels everything.
const shutdownSlack = 10 * time.Second

// Pod status of pods ended by a graceful node shutdown, as the kubelet reports them.
const (
	ReasonNodeShutdown  = "Terminated"
	messageNodeShutdown = "Pod was terminated in response to imminent node shutdown."
)

// MaxRestartBackoff caps the restart delay of a crash-looping container.
const MaxRestartBackoff = 30 * time.Second

// NodeAgent plays the kubelet for one Node: it registers the Node, renews its Lease, and
// runs the pods bound to it as local processes. See podWorker for the pod lifecycle.
type NodeAgent struct {
	name   string
	opts   NodeOptions
	client kubernetes.Interface
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the agent, pod workers included
	// shutdown is closed by Stop when ShutdownGracePeriod is set: pod workers terminate their
	// pods; podWG counts the workers.
	shutdown chan struct{}
	podWG    sync.WaitGroup

	mu           sync.Mutex
	workers      map[types.UID]*podWorker
	stopped      bool
	terminations []Termination
}

// Termination is how a deleted pod's container ended.
type Termination struct {
	Namespace, Name string
	UID             types.UID
	// ExitCode of the container (128+signal when killed by one); -1 if it never ran.
	ExitCode int32
	// GraceKilled: the container outlived its termination grace period and was SIGKILLed.
	GraceKilled bool
	// Took is from the start of the termination (preStop hook) to the container's end.
	Took time.Duration
	// NodeShutdown: ended by the agent's graceful shutdown (Stop), not by a deletion.
	NodeShutdown bool
}

// StartNodeAgent registers the node and starts serving its pods until ctx ends or Stop.
func StartNodeAgent(ctx context.Context, client kubernetes.Interface, opts NodeOptions) (*NodeAgent, error) {
	if opts.Name == "" || opts.Dir == "" {
		return nil, fmt.Errorf("node agent: Name and Dir are required")
	}
	if opts.IPs == nil {
		opts.IPs = NewIPAllocator()
	}
	if opts.RestartBackoff <= 0 {
		opts.RestartBackoff = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "pods"), 0o755); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	a := &NodeAgent{name: opts.Name, opts: opts, client: client, log: opts.Logger, ctx: ctx, cancel: cancel,
		workers: map[types.UID]*podWorker{}, shutdown: make(chan struct{})}
	if err := a.register(ctx); err != nil {
		cancel()
		return nil, err
	}
	a.wg.Go(a.heartbeat)

	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", opts.Name).String()
	}))
	inf := factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.podChanged(obj) },
		UpdateFunc: func(_, obj any) { a.podChanged(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				a.podGone(p.UID)
			}
		},
	}); err != nil {
		cancel()
		return nil, err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		cancel()
		factory.Shutdown()
		return nil, fmt.Errorf("node agent %s: pod informer did not sync", opts.Name)
	}
	a.wg.Go(func() { <-ctx.Done(); factory.Shutdown() })
	return a, nil
}

// Name of the node.
func (a *NodeAgent) Name() string { return a.name }

// PodDir is the folder of a pod (volumes/ and <container>.log).
func (a *NodeAgent) PodDir(pod *corev1.Pod) string {
	return filepath.Join(a.opts.Dir, "pods", fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))
}

// LogPath is where a container's stdout and stderr go.
func (a *NodeAgent) LogPath(pod *corev1.Pod, container string) string {
	return filepath.Join(a.PodDir(pod), container+".log")
}

// Running counts the pods whose worker is alive (running, terminating or refused and
// waiting for deletion).
func (a *NodeAgent) Running() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.workers)
}

// Terminations lists the pods deleted or shut down (Stop) so far whose container this agent
// ended, in order.
func (a *NodeAgent) Terminations() []Termination {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Termination(nil), a.terminations...)
}

// Stop stops the pods and the agent. With ShutdownGracePeriod, it terminates every running
// pod as a kubelet's graceful node shutdown does (see NodeOptions.ShutdownGracePeriod) and
// waits for them, at most that period plus shutdownSlack; without, or for what is left then,
// it kills the pod processes at once (SIGKILL to their process groups, no preStop). It then
// stops watching. The Node object is left behind. No new pod starts once Stop began.
func (a *NodeAgent) Stop() {
	a.refuseNewPods()
	if a.opts.ShutdownGracePeriod > 0 {
		close(a.shutdown)
		done := make(chan struct{})
		go func() { a.podWG.Wait(); close(done) }()
		t := time.NewTimer(a.opts.ShutdownGracePeriod + shutdownSlack)
		select {
		case <-done:
		case <-t.C:
			a.log.Warn("pods still running after the shutdown grace period; killing them")
		}
		t.Stop()
	}
	a.cancel()
	a.wg.Wait()
}

// refuseNewPods makes the agent ignore pods from now on: Stop calls it first; Cluster.Stop
// calls it on every node before stopping any, so that no node starts the replacement of a pod
// another one is shutting down.
func (a *NodeAgent) refuseNewPods() {
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
}

func (a *NodeAgent) podChanged(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	w, ok := a.workers[pod.UID]
	if !ok {
		w = newPodWorker(a, pod)
		a.workers[pod.UID] = w
		a.podWG.Add(1)
		a.wg.Go(func() {
			defer a.podWG.Done()
			w.run()
			a.mu.Lock()
			delete(a.workers, pod.UID)
			a.mu.Unlock()
		})
	}
	w.update(pod)
}

func (a *NodeAgent) podGone(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w, ok := a.workers[uid]; ok {
		w.markGone()
	}
}

func (a *NodeAgent) register(ctx context.Context) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: a.name,
		Labels: map[string]string{
			corev1.LabelHostname:   a.name,
			corev1.LabelOSStable:   "linux",
			corev1.LabelArchStable: runtime.GOARCH,
		},
	}}
	created, err := a.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = a.client.CoreV1().Nodes().Get(ctx, a.name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering node %s: %w", a.name, err)
	}
	now := metav1.Now()
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("8"),
		corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	status := corev1.NodeStatus{
		Capacity:    res,
		Allocatable: res,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady"),
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
			{Type: corev1.NodeHostName, Address: a.name},
		},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion:          "v1.37.0-tcpgateway-nodeagent",
			OperatingSystem:         "linux",
			Architecture:            runtime.GOARCH,
			ContainerRuntimeVersion: "process://tcpgateway-nodeagent",
		},
	}
	// The node controllers write to the Node right after it appears: on a conflict, re-read
	// and write again, as a kubelet does.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := a.client.CoreV1().Nodes().Get(ctx, a.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status = status
		created, err = a.client.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("setting node %s status: %w", a.name, err)
	}
	if err := a.renewLease(ctx, created); err != nil {
		return err
	}
	a.log.Info("node registered", "node", a.name)
	return nil
}

func (a *NodeAgent) renewLease(ctx context.Context, node *corev1.Node) error {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, a.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(a.name),
				LeaseDurationSeconds: ptr.To(int32(leaseDuration.Seconds())),
				RenewTime:            &now,
			},
		}
		if node != nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// heartbeat renews the Lease until the agent stops; failures are logged and retried at the
// next tick.
func (a *NodeAgent) heartbeat() {
	t := time.NewTicker(leaseRenew)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
			if err := a.renewLease(a.ctx, nil); err != nil && a.ctx.Err() == nil {
				a.log.Warn("renewing the node lease failed", "err", err)
			}
		}
	}
}
