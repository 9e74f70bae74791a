package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// minGraceAfterPreStop is what the kubelet still grants the process after a preStop hook
// that used up the whole grace period.
const minGraceAfterPreStop = 2 * time.Second

// The kubelet's bounds (kubecontainer.MaxContainerTerminationMessageLogLines and
// ...LogLength) on the log tail that terminationMessagePolicy FallbackToLogsOnError makes the
// termination message of a container that failed: the last 80 lines, at most 2048 bytes.
const (
	terminationLogLines = 80
	terminationLogBytes = 2048
)

// podWorker runs one pod for its whole life:
//
//  1. admission: pods the agent cannot run faithfully are set to Failed with a reason;
//  2. an address from the IPAllocator, reported as status.podIP; volumes written;
//  3. the container runs as a process; exits are restarted per restartPolicy with a
//     doubling backoff (restartCount, lastState.terminated.exitCode, CrashLoopBackOff); with
//     terminationMessagePolicy FallbackToLogsOnError, a non-zero exit's terminated.message
//     is the tail of that run's log (the termination message file is not supported);
//  4. the readiness probe drives the ContainersReady and Ready conditions; a failing
//     liveness probe restarts the container;
//  5. on deletion: preStop hook (httpGet, exec as a process of the pod, or sleep), SIGTERM,
//     SIGKILL when the grace period (counted from the start of the deletion, preStop
//     included) runs out, final status, then the pod object is deleted with grace 0 so that
//     its controller can replace it;
//  6. on the agent's graceful shutdown (NodeOptions.ShutdownGracePeriod): the same
//     termination with the shorter grace period, then status Failed with reason Terminated;
//     the object stays, as the kubelet leaves it.
type podWorker struct {
	a   *NodeAgent
	uid types.UID
	ns  string
	nm  string
	log *slog.Logger

	mu       sync.Mutex
	latest   *corev1.Pod
	notify   chan struct{}
	gone     chan struct{}
	goneOnce sync.Once
	// termination of a deleted pod: the SIGKILL at the end of its grace period, the start of it.
	graceKilled bool
	terminating time.Time
}

// newPodWorker makes the worker of pod, holding it as the latest version already: its run
// may start before the caller's first update.
func newPodWorker(a *NodeAgent, pod *corev1.Pod) *podWorker {
	return &podWorker{a: a, uid: pod.UID, ns: pod.Namespace, nm: pod.Name, latest: pod,
		log:    a.log.With("pod", pod.Namespace+"/"+pod.Name),
		notify: make(chan struct{}, 1), gone: make(chan struct{})}
}

func (w *podWorker) update(p *corev1.Pod) {
	w.mu.Lock()
	w.latest = p
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (w *podWorker) markGone() { w.goneOnce.Do(func() { close(w.gone) }) }

func (w *podWorker) pod() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest
}

// containerState is what the worker reports in the container status.
type containerState struct {
	ip           netip.Addr
	started      *metav1.Time
	state        corev1.ContainerState
	lastState    corev1.ContainerState
	restartCount int32
	ready        bool
	phase        corev1.PodPhase
	pid          int
	// reason and message of the pod status (set for a pod ended by the node's shutdown).
	podReason, podMessage string
}

// probeEvent is sent by a prober; gen ties it to one process instance.
type probeEvent struct {
	gen      int
	ready    bool
	liveFail bool
}

func (w *podWorker) run() {
	ctx, cancelRun := context.WithCancel(w.a.ctx)
	defer cancelRun()
	pod := w.pod()
	if pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		w.awaitDeletion(ctx) // terminal already (e.g. refused earlier): only finalize deletion
		return
	}
	if r := w.a.admit(pod); r != nil {
		w.refuse(ctx, r)
		return
	}
	ip, err := w.a.opts.IPs.Allocate()
	if err != nil {
		w.refuse(ctx, refuse(ReasonUnsupportedPod, "%v", err))
		return
	}
	defer w.a.opts.IPs.Release(ip)
	defer removeEmptyDirs(pod)
	dir := w.a.PodDir(pod)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.refuse(ctx, refuse(ReasonConfigError, "%v", err))
		return
	}
	cs := &containerState{ip: ip, phase: corev1.PodPending}
	c := &pod.Spec.Containers[0]

	// Prepare, retrying while ConfigMaps or Secrets are missing (bounded by the pod's life).
	var spec *runSpec
	for attempt := 0; ; attempt++ {
		spec, err = w.a.prepare(ctx, pod, ip, dir)
		if err == nil {
			break
		}
		var r *refusal
		if errors.As(err, &r) || !errors.Is(err, errNotYet) {
			if r == nil {
				r = refuse(ReasonConfigError, "%v", err)
			}
			w.refuse(ctx, r)
			return
		}
		if attempt == 0 {
			cs.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonConfigError, Message: err.Error()}}
			w.writeStatus(ctx, c, cs)
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.gone:
			t.Stop()
			return
		case <-w.a.shutdown:
			t.Stop()
			return
		case <-w.notify:
			t.Stop()
			if p := w.pod(); p.DeletionTimestamp != nil {
				w.finalize(ctx, c, cs)
				return
			}
		case <-t.C:
		}
	}

	var (
		proc     *process
		gen      int
		exitCh   = make(chan int, 1)        // gen of the process that exited
		probeCh  = make(chan probeEvent, 4) // from the current process's probers
		stopProb context.CancelFunc
		backoff  = w.a.opts.RestartBackoff
		restartC <-chan time.Time
		termDone chan struct{}
		// shutdownC is the agent's shutdown, until it started this pod's termination;
		// byShutdown: the termination under way is the node's, not a deletion's.
		shutdownC  = w.a.shutdown
		byShutdown bool
		logPath    = w.a.LogPath(pod, c.Name)
		logStart   int64 // size of the log when the current process started: its output follows
	)
	start := func() {
		gen++
		cmd := exec.Command(spec.bin, spec.args...)
		cmd.Env, cmd.Dir = spec.env, spec.dir
		logStart = 0
		if fi, err := os.Stat(logPath); err == nil {
			logStart = fi.Size()
		}
		p, err := startCmd(c.Name, cmd, logPath)
		if err != nil {
			w.refuse(ctx, refuse(ReasonUnsupportedPod, "starting %s: %v", spec.bin, err))
			return
		}
		proc = p
		now := metav1.Now()
		if cs.started == nil {
			cs.started = &now
		}
		cs.pid = cmd.Process.Pid
		cs.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
		cs.phase = corev1.PodRunning
		cs.ready = c.ReadinessProbe == nil
		g := gen
		var pctx context.Context
		pctx, stopProb = context.WithCancel(ctx)
		go func() {
			select {
			case <-p.done:
				exitCh <- g
			case <-ctx.Done():
			}
		}()
		if c.ReadinessProbe != nil {
			go w.probe(pctx, c, c.ReadinessProbe, ip, g, false, probeCh)
		}
		if c.LivenessProbe != nil {
			go w.probe(pctx, c, c.LivenessProbe, ip, g, true, probeCh)
		}
		w.log.Info("container started", "ip", ip, "pid", cs.pid, "restarts", cs.restartCount)
		w.writeStatus(ctx, c, cs)
	}
	start()
	if proc == nil {
		return
	}
	defer func() {
		if stopProb != nil {
			stopProb()
		}
		if proc != nil {
			proc.stop(0) // agent stopping or pod force-deleted: SIGKILL at once
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.gone:
			w.log.Info("pod object gone; killing its process")
			return
		case g := <-exitCh:
			if g != gen {
				continue
			}
			stopProb()
			code := proc.exitCode()
			now := metav1.Now()
			term := &corev1.ContainerStateTerminated{ExitCode: code, Reason: "Completed", FinishedAt: now,
				StartedAt: cs.state.Running.StartedAt, ContainerID: "process://" + strconv.Itoa(cs.pid)}
			if code != 0 {
				term.Reason = "Error"
				term.Message = terminationMessage(c, logPath, logStart)
			}
			w.log.Info("container exited", "exit_code", code)
			proc, cs.ready = nil, false
			if termDone != nil {
				cs.state = corev1.ContainerState{Terminated: term}
				continue // the termination goroutine finishes the job
			}
			policy := pod.Spec.RestartPolicy
			if policy == corev1.RestartPolicyNever || (policy == corev1.RestartPolicyOnFailure && code == 0) {
				cs.state = corev1.ContainerState{Terminated: term}
				cs.phase = corev1.PodSucceeded
				if code != 0 {
					cs.phase = corev1.PodFailed
				}
				w.writeStatus(ctx, c, cs)
				w.awaitDeletion(ctx)
				return
			}
			cs.lastState = corev1.ContainerState{Terminated: term}
			cs.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container %s", backoff, c.Name)}}
			w.writeStatus(ctx, c, cs)
			restartC = time.After(backoff)
			backoff = min(2*backoff, MaxRestartBackoff)
		case <-restartC:
			restartC = nil
			cs.restartCount++
			start()
			if proc == nil {
				return
			}
		case ev := <-probeCh:
			if ev.gen != gen || proc == nil {
				continue
			}
			if ev.liveFail {
				w.log.Info("liveness probe failed; restarting the container")
				grace := time.Duration(ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
				go proc.stop(grace) // the exit arrives on exitCh and is restarted there
				continue
			}
			if ev.ready != cs.ready {
				cs.ready = ev.ready
				w.log.Info("readiness changed", "ready", ev.ready)
				w.writeStatus(ctx, c, cs)
			}
		case <-w.notify:
			p := w.pod()
			if p.DeletionTimestamp == nil || termDone != nil {
				continue
			}
			restartC = nil
			termDone = make(chan struct{})
			grace := time.Duration(ptr.Deref(p.DeletionGracePeriodSeconds, ptr.Deref(p.Spec.TerminationGracePeriodSeconds, 30))) * time.Second
			go w.terminate(ctx, c, proc, spec, ip, logPath, grace, termDone)
		case <-shutdownC:
			shutdownC = nil
			if termDone != nil {
				continue // a deletion's termination is under way: it ends the pod
			}
			if proc == nil {
				return // in back-off: nothing runs
			}
			restartC, byShutdown = nil, true
			termDone = make(chan struct{})
			grace := min(time.Duration(ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 30))*time.Second, w.a.opts.ShutdownGracePeriod)
			go w.terminate(ctx, c, proc, spec, ip, logPath, grace, termDone)
		case <-termDone:
			if proc != nil { // exited, but exitCh not read yet
				term := &corev1.ContainerStateTerminated{
					ExitCode: proc.exitCode(), Reason: "Error", FinishedAt: metav1.Now(),
					ContainerID: "process://" + strconv.Itoa(cs.pid)}
				if term.ExitCode != 0 {
					term.Message = terminationMessage(c, logPath, logStart)
				}
				cs.state = corev1.ContainerState{Terminated: term}
				proc = nil
			}
			if byShutdown {
				w.finalizeShutdown(ctx, c, cs)
			} else {
				w.finalize(ctx, c, cs)
			}
			return
		}
	}
}

// terminationMessage is the termination message of a container that exited non-zero: with
// terminationMessagePolicy FallbackToLogsOnError, what the kubelet puts there, the tail of
// the log the process wrote from offset from on (its own run, not the earlier ones);
// otherwise nothing.
func terminationMessage(c *corev1.Container, logPath string, from int64) string {
	if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		return ""
	}
	s, err := logTail(logPath, from, terminationLogLines, terminationLogBytes)
	if err != nil {
		return ""
	}
	return s
}

// logTail returns the last lines lines of the file at path after offset from, at most
// maxBytes of them (the kubelet keeps the last 2048 bytes of the last 80 lines; both are
// suffixes of the log, so this is the shorter of the two).
func logTail(path string, from int64, lines, maxBytes int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	start := max(from, fi.Size()-int64(maxBytes), 0)
	buf := make([]byte, fi.Size()-start)
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	// Count lines from the end; a final newline ends the last line rather than starting one.
	n, end := 0, len(buf)
	if end > 0 && buf[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if buf[i] == '\n' {
			if n++; n == lines {
				buf = buf[i+1:]
				break
			}
		}
	}
	return strings.ToValidUTF8(string(buf), ""), nil
}

// terminate runs the termination sequence of a running container with grace period grace
// and closes done once the process is gone. proc may be nil (container in back-off).
func (w *podWorker) terminate(ctx context.Context, c *corev1.Container, proc *process, spec *runSpec,
	ip netip.Addr, logPath string, grace time.Duration, done chan struct{}) {
	defer close(done)
	if proc == nil {
		return
	}
	deadline := time.Now().Add(grace)
	w.mu.Lock()
	w.terminating = time.Now()
	w.mu.Unlock()
	w.log.Info("terminating", "grace", grace)
	if h := c.Lifecycle; h != nil && h.PreStop != nil && grace > 0 {
		hctx, cancel := context.WithDeadline(ctx, deadline)
		switch {
		case h.PreStop.HTTPGet != nil:
			err := httpGet(hctx, c, h.PreStop.HTTPGet, ip, grace)
			w.log.Info("preStop hook done", "err", err)
		case h.PreStop.Exec != nil:
			err := w.a.execHook(hctx, c, spec, h.PreStop.Exec, logPath)
			w.log.Info("preStop hook done", "err", err)
		case h.PreStop.Sleep != nil:
			t := time.NewTimer(time.Duration(h.PreStop.Sleep.Seconds) * time.Second)
			select {
			case <-t.C:
			case <-hctx.Done():
				t.Stop()
			}
		}
		cancel()
	}
	left := max(time.Until(deadline), minGraceAfterPreStop)
	if grace == 0 {
		left = 0
	}
	proc.signal(syscall.SIGTERM)
	t := time.NewTimer(left)
	select {
	case <-proc.done:
		t.Stop()
	case <-t.C:
		w.log.Info("grace period over; SIGKILL")
		w.mu.Lock()
		w.graceKilled = true
		w.mu.Unlock()
		proc.signal(syscall.SIGKILL)
		<-proc.done
	case <-ctx.Done():
		t.Stop()
		proc.signal(syscall.SIGKILL)
		<-proc.done
	}
}

// execHook runs an exec hook as a process of the pod, as the kubelet runs it inside the
// container: the container's environment and working directory, the command's executable
// resolved by resolveHookBinary, its arguments rewritten by the mount rule (see prepare),
// output appended to the container's log. It returns when the command exited (an error for a
// non-zero status, which the kubelet reports as FailedPreStopHook) or ctx ended, in which
// case the process is killed.
func (a *NodeAgent) execHook(ctx context.Context, c *corev1.Container, spec *runSpec, e *corev1.ExecAction, logPath string) error {
	bin, rawArgs, r := a.resolveHookBinary(c, e.Command)
	if r != nil {
		return r
	}
	args := make([]string, 0, len(rawArgs))
	for _, arg := range rawArgs {
		args = append(args, rewriteArg(arg, spec.mounts))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir = spec.env, spec.dir
	p, err := startCmd(c.Name+" hook", cmd, logPath)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop(0)
		return fmt.Errorf("exec hook %q: %w", e.Command, ctx.Err())
	}
	if code := p.exitCode(); code != 0 {
		return fmt.Errorf("exec hook %q exited with status %d", e.Command, code)
	}
	return nil
}

// finalize reports the terminal status of a deleted pod and removes the object.
func (w *podWorker) finalize(ctx context.Context, c *corev1.Container, cs *containerState) {
	cs.ready = false
	cs.phase = corev1.PodSucceeded
	if t := cs.state.Terminated; t == nil || t.ExitCode != 0 {
		cs.phase = corev1.PodFailed
	}
	w.writeStatus(ctx, c, cs)
	w.record(cs, false)
	w.deleteObject(ctx)
}

// finalizeShutdown reports a pod ended by the node's shutdown as the kubelet does: Failed,
// reason Terminated; the object stays.
func (w *podWorker) finalizeShutdown(ctx context.Context, c *corev1.Container, cs *containerState) {
	cs.ready = false
	cs.phase = corev1.PodFailed
	cs.podReason, cs.podMessage = ReasonNodeShutdown, messageNodeShutdown
	w.writeStatus(ctx, c, cs)
	w.record(cs, true)
}

// record adds the end of a deleted pod's container to the agent's terminations.
func (w *podWorker) record(cs *containerState, nodeShutdown bool) {
	t := Termination{Namespace: w.ns, Name: w.nm, UID: w.uid, ExitCode: -1, NodeShutdown: nodeShutdown}
	if term := cs.state.Terminated; term != nil {
		t.ExitCode = term.ExitCode
	}
	w.mu.Lock()
	t.GraceKilled = w.graceKilled
	if !w.terminating.IsZero() {
		t.Took = time.Since(w.terminating)
	}
	w.mu.Unlock()
	w.log.Info("pod ended", "exit_code", t.ExitCode, "sigkilled", t.GraceKilled, "took", t.Took, "node_shutdown", nodeShutdown)
	w.a.mu.Lock()
	w.a.terminations = append(w.a.terminations, t)
	w.a.mu.Unlock()
}

// refuse sets the pod to Failed with r and waits for its deletion.
func (w *podWorker) refuse(ctx context.Context, r *refusal) {
	w.log.Warn("refusing pod", "reason", r.reason, "message", r.message)
	err := w.updateStatus(ctx, func(st *corev1.PodStatus) {
		st.Phase = corev1.PodFailed
		st.Reason, st.Message = r.reason, r.message
		st.HostIP = "127.0.0.1"
		st.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
		if st.StartTime == nil {
			st.StartTime = ptr.To(metav1.Now())
		}
	})
	if err != nil && ctx.Err() == nil {
		w.log.Warn("writing the refusal failed", "err", err)
	}
	w.awaitDeletion(ctx)
}

// awaitDeletion deletes the object (grace 0) once the pod is marked for deletion.
func (w *podWorker) awaitDeletion(ctx context.Context) {
	for {
		if p := w.pod(); p.DeletionTimestamp != nil {
			w.deleteObject(ctx)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-w.gone:
			return
		case <-w.a.shutdown:
			return
		case <-w.notify:
		}
	}
}

func (w *podWorker) deleteObject(ctx context.Context) {
	err := w.a.client.CoreV1().Pods(w.ns).Delete(ctx, w.nm, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &w.uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
		w.log.Warn("deleting the pod object failed", "err", err)
	}
	w.log.Info("pod removed")
}

// writeStatus publishes cs.
func (w *podWorker) writeStatus(ctx context.Context, c *corev1.Container, cs *containerState) {
	err := w.updateStatus(ctx, func(st *corev1.PodStatus) {
		st.Phase = cs.phase
		st.Reason, st.Message = cs.podReason, cs.podMessage
		st.HostIP = "127.0.0.1"
		st.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
		st.PodIP = cs.ip.String()
		st.PodIPs = []corev1.PodIP{{IP: cs.ip.String()}}
		if st.StartTime == nil {
			st.StartTime = ptr.To(metav1.Now())
		}
		running := cs.state.Running != nil
		setCondition(st, corev1.PodInitialized, true)
		setCondition(st, corev1.PodReadyToStartContainers, true)
		setCondition(st, corev1.ContainersReady, cs.ready && running)
		setCondition(st, corev1.PodReady, cs.ready && running)
		id := ""
		if cs.pid != 0 {
			id = "process://" + strconv.Itoa(cs.pid)
		}
		st.ContainerStatuses = []corev1.ContainerStatus{{
			Name:                 c.Name,
			Image:                c.Image,
			ImageID:              c.Image,
			ContainerID:          id,
			State:                cs.state,
			LastTerminationState: cs.lastState,
			Ready:                cs.ready && running,
			Started:              ptr.To(running),
			RestartCount:         cs.restartCount,
		}}
	})
	if err != nil && ctx.Err() == nil {
		w.log.Warn("writing the pod status failed", "err", err)
	}
}

func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool) {
	s := corev1.ConditionFalse
	if ok {
		s = corev1.ConditionTrue
	}
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			if st.Conditions[i].Status != s {
				st.Conditions[i].Status = s
				st.Conditions[i].LastTransitionTime = metav1.Now()
			}
			return
		}
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.Now()})
}

// updateStatus applies mutate to the current status, retrying on conflicts.
func (w *podWorker) updateStatus(ctx context.Context, mutate func(*corev1.PodStatus)) error {
	pods := w.a.client.CoreV1().Pods(w.ns)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := pods.Get(ctx, w.nm, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.UID != w.uid {
			return apierrors.NewNotFound(corev1.Resource("pods"), w.nm)
		}
		mutate(&p.Status)
		_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
}

// probe runs one probe until ctx ends, sending readiness transitions, or one liveness
// failure (after which it stops).
func (w *podWorker) probe(ctx context.Context, c *corev1.Container, p *corev1.Probe, ip netip.Addr, gen int, liveness bool, out chan<- probeEvent) {
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	if p.PeriodSeconds == 0 {
		period = 10 * time.Second
	}
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	success, failure := max(p.SuccessThreshold, 1), p.FailureThreshold
	if failure <= 0 {
		failure = 3
	}
	send := func(ev probeEvent) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	wait := time.Duration(p.InitialDelaySeconds) * time.Second
	ready := false
	var oks, fails int32
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = period
		var err error
		pctx, cancel := context.WithTimeout(ctx, timeout)
		switch {
		case p.HTTPGet != nil:
			err = httpGet(pctx, c, p.HTTPGet, ip, timeout)
		case p.TCPSocket != nil:
			var port int
			if port, err = resolvePort(c, p.TCPSocket.Port); err == nil {
				var conn net.Conn
				conn, err = (&net.Dialer{}).DialContext(pctx, "tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
				if err == nil {
					_ = conn.Close()
				}
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			oks, fails = oks+1, 0
		} else {
			oks, fails = 0, fails+1
		}
		switch {
		case liveness && fails >= failure:
			send(probeEvent{gen: gen, liveFail: true})
			return
		case !liveness && !ready && oks >= success:
			ready = true
			if !send(probeEvent{gen: gen, ready: true}) {
				return
			}
		case !liveness && ready && fails >= failure:
			ready = false
			if !send(probeEvent{gen: gen, ready: false}) {
				return
			}
		}
	}
}

// httpGet performs an httpGet probe or hook against the pod's address. A host other than
// a loopback address is refused (never contacted). Redirects are not followed; 2xx and 3xx
// are success.
func httpGet(ctx context.Context, c *corev1.Container, g *corev1.HTTPGetAction, ip netip.Addr, timeout time.Duration) error {
	host := ip.String()
	if g.Host != "" {
		h, err := netip.ParseAddr(g.Host)
		if err != nil || !h.IsLoopback() {
			return fmt.Errorf("host %q is not a loopback address", g.Host)
		}
		host = g.Host
	}
	port, err := resolvePort(c, g.Port)
	if err != nil {
		return err
	}
	scheme := "http"
	if g.Scheme == corev1.URISchemeHTTPS {
		return errors.New("https probes are not supported")
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + g.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for _, h := range g.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	hc := &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	return nil
}

// resolvePort turns a probe port (number or container port name) into a number.
func resolvePort(c *corev1.Container, p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("container %q has no port named %q", c.Name, p.StrVal)
}
