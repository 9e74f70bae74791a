package controllers

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Which gateway pods fail to start, and how the Degraded condition says it (reason
// PodsFailing). Pure functions of the pods; the reconciler lists them
// (tcpgateway_pods.go).

// failingWaitingReasons are the kubelet's waiting reasons of a container that cannot start or
// keeps exiting. The other waiting reasons (ContainerCreating, PodInitializing) are steps of a
// normal start.
var failingWaitingReasons = map[string]bool{
	"CrashLoopBackOff":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"RunContainerError":          true,
	"ErrImagePull":               true,
	"ImagePullBackOff":           true,
	"ErrImageNeverPull":          true,
	"InvalidImageName":           true,
}

// reasonNotReadyAfterFailure is the podFailure reason of a container running again after a
// failed exit and not ready since. A crash-looping container runs for a moment between two
// back-offs; counting that moment as healthy would flip Degraded (and emit an Event) at
// every restart.
const reasonNotReadyAfterFailure = "NotReady"

// Bounds of the PodsFailing message, which must fit in maxConditionMessage.
const (
	// maxFailingPodsListed pods are described; the others are counted.
	maxFailingPodsListed = 3
	// minPodFailureMessage is the least of a pod's termination (or waiting) message quoted,
	// whatever the length of the rest.
	minPodFailureMessage = 80
)

// podFailure is a gateway pod whose container fails to start.
type podFailure struct {
	pod string
	// reason is the kubelet's waiting reason (CrashLoopBackOff, ...), the termination reason
	// of a container that just exited (Error, OOMKilled), or reasonNotReadyAfterFailure.
	reason string
	// exitCode, termReason: of the last termination, when there is one. termReason is kept
	// only when it says more than the exit code (OOMKilled, not Error).
	exitCode   *int32
	termReason string
	restarts   int32
	// message is one line of the last termination message (with terminationMessagePolicy
	// FallbackToLogsOnError: the end of the container's log, the gateway's own error) or of
	// the waiting message.
	message string
}

// podFailureOf returns how pod's gateway container fails to start, or nil when it does not
// (running, starting normally, or the pod is being deleted: a pod that exits non-zero while
// terminating is not crash-looping).
func podFailureOf(pod *corev1.Pod) *podFailure {
	if pod.DeletionTimestamp != nil {
		return nil
	}
	i := slices.IndexFunc(pod.Status.ContainerStatuses, func(cs corev1.ContainerStatus) bool { return cs.Name == ContainerName })
	if i < 0 {
		return nil
	}
	cs := &pod.Status.ContainerStatuses[i]
	f := &podFailure{pod: pod.Name, restarts: cs.RestartCount}
	last := cs.LastTerminationState.Terminated
	switch st := cs.State; {
	case st.Waiting != nil && failingWaitingReasons[st.Waiting.Reason]:
		f.reason = st.Waiting.Reason
		f.setTermination(last)
		// In a crash loop the waiting message is the back-off ("back-off 40s restarting
		// failed container"): the last termination says why. Otherwise (an image that does
		// not pull, a missing Secret key) the waiting message is the current problem.
		if st.Waiting.Reason == "CrashLoopBackOff" {
			f.message = firstNonEmpty(terminationMessage(last), st.Waiting.Message)
		} else {
			f.message = firstNonEmpty(st.Waiting.Message, terminationMessage(last))
		}
	case st.Terminated != nil && st.Terminated.ExitCode != 0:
		// Exited, not yet in back-off (StatefulSet pods always restart).
		f.reason = cmp.Or(st.Terminated.Reason, "Error")
		f.setTermination(st.Terminated)
		f.message = terminationMessage(st.Terminated)
	case st.Running != nil && !cs.Ready && last != nil && last.ExitCode != 0 && !readySince(pod, st.Running.StartedAt):
		f.reason = reasonNotReadyAfterFailure
		f.setTermination(last)
		f.message = terminationMessage(last)
	default:
		return nil
	}
	f.message = summaryLine(f.message)
	return f
}

// readySince says whether the pod has been ready since t: its Ready condition changed at or
// after t (the condition was False when the container restarted, after a failed exit). A pod
// that crashed once, ran and was ready, and later is not ready (Kafka unreachable, a drain)
// is not failing to start. Timestamps have a resolution of one second and the restart
// back-off is longer, so a crash and the restart after it are never in the same second.
func readySince(pod *corev1.Pod, t metav1.Time) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return !c.LastTransitionTime.Before(&t)
		}
	}
	return false
}

func (f *podFailure) setTermination(t *corev1.ContainerStateTerminated) {
	if t == nil {
		return
	}
	f.exitCode = &t.ExitCode
	if t.Reason != "" && t.Reason != "Error" && t.Reason != f.reason {
		f.termReason = t.Reason
	}
}

// String: `chat-1 CrashLoopBackOff (exit 1, 4 restarts): <message>`.
func (f *podFailure) String() string { return f.format(maxConditionMessage) }

// format is String within n bytes (the message is shortened, to no less than
// minPodFailureMessage).
func (f *podFailure) format(n int) string {
	var b strings.Builder
	b.WriteString(f.pod + " " + f.reason)
	var details []string
	if f.exitCode != nil {
		d := fmt.Sprintf("exit %d", *f.exitCode)
		if f.termReason != "" {
			d += " " + f.termReason
		}
		details = append(details, d)
	}
	if f.restarts > 0 || f.exitCode != nil {
		details = append(details, plural(int(f.restarts), "restart"))
	}
	if len(details) > 0 {
		b.WriteString(" (" + strings.Join(details, ", ") + ")")
	}
	if f.message != "" {
		b.WriteString(": ")
		b.WriteString(shorten(f.message, max(n-b.Len(), minPodFailureMessage)))
	}
	return b.String()
}

// failingPods returns the failures among pods, in pod order (chat-2 before chat-10), and the
// number of pods that count (those not being deleted).
func failingPods(pods []corev1.Pod) (failures []*podFailure, total int) {
	for i := range pods {
		if pods[i].DeletionTimestamp != nil {
			continue
		}
		total++
		if f := podFailureOf(&pods[i]); f != nil {
			failures = append(failures, f)
		}
	}
	slices.SortFunc(failures, func(a, b *podFailure) int {
		return cmp.Or(cmp.Compare(len(a.pod), len(b.pod)), strings.Compare(a.pod, b.pod))
	})
	return failures, total
}

// podsFailingMessage: `2 of 3 pods failing: chat-1 CrashLoopBackOff (exit 1, 4 restarts): ...;
// chat-2 ...`, at most maxFailingPodsListed pods described.
func podsFailingMessage(failures []*podFailure, total int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %s failing: ", len(failures), plural(total, "pod"))
	listed := min(len(failures), maxFailingPodsListed)
	more := ""
	if len(failures) > listed {
		more = fmt.Sprintf("; and %d more", len(failures)-listed)
	}
	// Each pod gets an equal share of what is left.
	share := (maxConditionMessage-b.Len()-len(more))/max(listed, 1) - len("; ")
	for i, f := range failures[:listed] {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.format(share))
	}
	b.WriteString(more)
	return b.String()
}

// restartCounts matches the restart counts of a PodsFailing message.
var restartCounts = regexp.MustCompile(`\b\d+ restarts?\)`)

// withoutRestartCounts is a PodsFailing message with its restart counts blanked: they change
// at every restart of a crash-looping pod, and the Event about the condition is emitted again
// when the failure changes, not at every restart.
func withoutRestartCounts(msg string) string {
	return restartCounts.ReplaceAllString(msg, "N restarts)")
}

func terminationMessage(t *corev1.ContainerStateTerminated) string {
	if t == nil {
		return ""
	}
	return t.Message
}

// summaryLine picks the line of a termination message that says why the process ended: the
// "panic:" or "fatal error:" line of a Go crash (its stack trace follows), else the last
// non-empty line (a program's fatal error comes last, after what it logged before).
func summaryLine(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// shorten cuts s to at most n bytes, keeping its beginning and its end, which in a wrapped Go
// error are the context and the root cause.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const sep = " ... "
	head := (n - len(sep)) / 3
	tail := n - len(sep) - head
	return strings.ToValidUTF8(s[:head], "") + sep + strings.ToValidUTF8(s[len(s)-tail:], "")
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
