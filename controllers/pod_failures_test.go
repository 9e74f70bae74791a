package controllers

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// gatewayPod is a gateway pod whose container has this status.
func gatewayPod(name string, cs corev1.ContainerStatus) corev1.Pod {
	cs.Name = ContainerName
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "prod"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{cs}},
	}
}

func running(ready bool, restarts int32, last *corev1.ContainerStateTerminated) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{
		State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		Ready:        ready,
		RestartCount: restarts,
	}
	if last != nil {
		cs.LastTerminationState.Terminated = last
	}
	return cs
}

// withReady sets the Ready condition's last transition and the container's start (seconds).
func withReady(p corev1.Pod, readyChanged, started int64) corev1.Pod {
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse,
		LastTransitionTime: metav1.Unix(readyChanged, 0)}}
	p.Status.ContainerStatuses[0].State.Running.StartedAt = metav1.Unix(started, 0)
	return p
}

func waiting(reason, message string, restarts int32, last *corev1.ContainerStateTerminated) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{
		State:        corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
		RestartCount: restarts,
	}
	if last != nil {
		cs.LastTerminationState.Terminated = last
	}
	return cs
}

func exited(code int32, reason, message string) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: message}
}

// The gateway's own startup error, as the node agent or the kubelet (terminationMessagePolicy
// FallbackToLogsOnError) puts it in the termination message: the end of the log.
const shortKeyError = "gateway: while setting up auth: auth: hs256SecretFile: while parsing key file /etc/tcpgateway/keys/hs256.secret: HS256 secret is 5 bytes, need at least 32 (RFC 7518 §3.2)\n"

func TestPodFailureOf(t *testing.T) {
	deleting := gatewayPod("chat-0", waiting("CrashLoopBackOff", "", 3, exited(1, "Error", shortKeyError)))
	deleting.DeletionTimestamp = &metav1.Time{}
	otherContainer := gatewayPod("chat-0", waiting("CrashLoopBackOff", "", 3, exited(1, "Error", "x")))
	otherContainer.Status.ContainerStatuses[0].Name = "sidecar"
	tests := []struct {
		name string
		pod  corev1.Pod
		want string // "" = not failing
	}{
		{"ready", gatewayPod("chat-0", running(true, 0, nil)), ""},
		{"starting, not ready yet", gatewayPod("chat-0", running(false, 0, nil)), ""},
		{"no container status yet", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "chat-0"}}, ""},
		{"container creating", gatewayPod("chat-0", waiting("ContainerCreating", "", 0, nil)), ""},
		{"ready again after a crash", gatewayPod("chat-0", running(true, 1, exited(2, "Error", "panic: x"))), ""},
		{"restarted after a clean exit (liveness, drain)", gatewayPod("chat-0", running(false, 1, exited(0, "Completed", ""))), ""},
		{"deleting", deleting, ""},
		{"no gateway container", otherContainer, ""},
		{"crash loop: the last termination message says why",
			gatewayPod("chat-1", waiting("CrashLoopBackOff", "back-off 40s restarting failed container=gateway", 4, exited(1, "Error", shortKeyError))),
			"chat-1 CrashLoopBackOff (exit 1, 4 restarts): gateway: while setting up auth: auth: hs256SecretFile: while parsing key file /etc/tcpgateway/keys/hs256.secret: HS256 secret is 5 bytes, need at least 32 (RFC 7518 §3.2)"},
		{"crash loop without a termination message",
			gatewayPod("chat-1", waiting("CrashLoopBackOff", "back-off 10s restarting failed container=gateway", 1, exited(2, "Error", ""))),
			"chat-1 CrashLoopBackOff (exit 2, 1 restart): back-off 10s restarting failed container=gateway"},
		{"OOM killed",
			gatewayPod("chat-1", waiting("CrashLoopBackOff", "", 2, exited(137, "OOMKilled", ""))),
			"chat-1 CrashLoopBackOff (exit 137 OOMKilled, 2 restarts)"},
		{"Secret key missing",
			gatewayPod("chat-2", waiting("CreateContainerConfigError", `couldn't find key hs256.secret in Secret prod/chat-jwt`, 0, nil)),
			"chat-2 CreateContainerConfigError: couldn't find key hs256.secret in Secret prod/chat-jwt"},
		{"image pull after earlier crashes: the waiting message is the current problem",
			gatewayPod("chat-2", waiting("ImagePullBackOff", `Back-off pulling image "tcpgateway:typo"`, 3, exited(1, "Error", "old"))),
			`chat-2 ImagePullBackOff (exit 1, 3 restarts): Back-off pulling image "tcpgateway:typo"`},
		{"ErrImagePull", gatewayPod("chat-2", waiting("ErrImagePull", "not found", 0, nil)), "chat-2 ErrImagePull: not found"},
		{"RunContainerError", gatewayPod("chat-2", waiting("RunContainerError", "exec: no such file", 0, nil)), "chat-2 RunContainerError: exec: no such file"},
		{"just exited, not yet in back-off",
			gatewayPod("chat-0", corev1.ContainerStatus{State: corev1.ContainerState{Terminated: exited(1, "Error", shortKeyError)}}),
			"chat-0 Error (exit 1, 0 restarts): gateway: while setting up auth"},
		{"running again between two back-offs, not ready",
			gatewayPod("chat-0", running(false, 5, exited(1, "Error", shortKeyError))),
			"chat-0 NotReady (exit 1, 5 restarts): gateway: while setting up auth"},
		{"running again, not ready since the crash",
			withReady(gatewayPod("chat-0", running(false, 5, exited(1, "Error", shortKeyError))), 100, 130),
			"chat-0 NotReady (exit 1, 5 restarts): gateway: while setting up auth"},
		{"crashed once, was ready since, not ready now (Kafka, drain)",
			withReady(gatewayPod("chat-0", running(false, 1, exited(137, "OOMKilled", ""))), 200, 130), ""},
		{"crashed once, ready in the second it started",
			withReady(gatewayPod("chat-0", running(false, 1, exited(137, "OOMKilled", ""))), 130, 130), ""},
		{"a Go panic: its first line, not the stack trace",
			gatewayPod("chat-0", waiting("CrashLoopBackOff", "", 1, exited(2, "Error",
				"{\"level\":\"INFO\",\"msg\":\"starting\"}\npanic: runtime error: index out of range [3] with length 3\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/cmd/gateway/main.go:20 +0x1d\nexit status 2\n"))),
			"chat-0 CrashLoopBackOff (exit 2, 1 restart): panic: runtime error: index out of range [3] with length 3"},
		{"logs before the error: the last line",
			gatewayPod("chat-0", waiting("CrashLoopBackOff", "", 1, exited(1, "Error", "{\"level\":\"INFO\",\"msg\":\"listening\"}\ngateway: while listening for clients: address in use\n"))),
			"chat-0 CrashLoopBackOff (exit 1, 1 restart): gateway: while listening for clients: address in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := podFailureOf(&tt.pod)
			got := ""
			if f != nil {
				got = f.String()
			}
			if tt.want == "" && got != "" {
				t.Fatalf("failing: %q, want not failing", got)
			}
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestPodsFailingMessage(t *testing.T) {
	crash := func(name string) corev1.Pod {
		return gatewayPod(name, waiting("CrashLoopBackOff", "", 4, exited(1, "Error", "auth: key too short")))
	}
	deleting := crash("chat-9")
	deleting.DeletionTimestamp = &metav1.Time{}
	tests := []struct {
		name string
		pods []corev1.Pod
		want string
	}{
		{"none", []corev1.Pod{gatewayPod("chat-0", running(true, 0, nil))}, ""},
		{"one of three",
			[]corev1.Pod{gatewayPod("chat-0", running(true, 0, nil)), crash("chat-1"), gatewayPod("chat-2", running(true, 0, nil))},
			"1 of 3 pods failing: chat-1 CrashLoopBackOff (exit 1, 4 restarts): auth: key too short"},
		{"the only pod", []corev1.Pod{crash("chat-0")},
			"1 of 1 pod failing: chat-0 CrashLoopBackOff (exit 1, 4 restarts): auth: key too short"},
		{"in ordinal order, deleting pods not counted",
			[]corev1.Pod{crash("chat-10"), crash("chat-2"), deleting},
			"2 of 2 pods failing: chat-2 CrashLoopBackOff (exit 1, 4 restarts): auth: key too short; chat-10 CrashLoopBackOff"},
		{"at most three described",
			[]corev1.Pod{crash("chat-4"), crash("chat-3"), crash("chat-2"), crash("chat-1"), crash("chat-0")},
			"5 of 5 pods failing: chat-0 CrashLoopBackOff (exit 1, 4 restarts): auth: key too short; chat-1 CrashLoopBackOff (exit 1, 4 restarts): auth: key too short; chat-2 CrashLoopBackOff (exit 1, 4 restarts): auth: key too short; and 2 more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failures, total := failingPods(tt.pods)
			if tt.want == "" {
				if len(failures) != 0 {
					t.Fatalf("failures %v", failures)
				}
				return
			}
			if got := podsFailingMessage(failures, total); !strings.HasPrefix(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// However long the pods' messages, the PodsFailing message stays within the condition bound
// and keeps each pod's root cause (the end of its error).
func TestPodsFailingMessageIsBounded(t *testing.T) {
	long := "gateway: while setting up auth: " + strings.Repeat("while doing something: ", 100) + "the root cause"
	for _, tt := range []struct {
		name  string // of the TCPGateway
		pods  int
		shown int
	}{
		{"chat", 1, 1},
		{"chat", 4, 3},
		{strings.Repeat("c", 52), 1, 1}, // the longest name, and pod names of 63 characters
		{strings.Repeat("c", 52), 150, 3},
	} {
		var pods []corev1.Pod
		for i := range tt.pods {
			pods = append(pods, gatewayPod(fmt.Sprintf("%s-%d", tt.name, i),
				waiting("CrashLoopBackOff", "", 12345, exited(255, "OOMKilled", long))))
		}
		failures, total := failingPods(pods)
		msg := podsFailingMessage(failures, total)
		if len(msg) > maxConditionMessage {
			t.Errorf("%d pods: message of %d bytes, more than %d", tt.pods, len(msg), maxConditionMessage)
		}
		if n := strings.Count(msg, "the root cause"); n != tt.shown {
			t.Errorf("%d pods: root cause quoted %d times, want %d: %q", tt.pods, n, tt.shown, msg)
		}
		if n := strings.Count(msg, "CrashLoopBackOff (exit 255 OOMKilled, 12345 restarts): gateway: while setting up auth: "); n != tt.shown {
			t.Errorf("%d pods: %d pods described, want %d: %q", tt.pods, n, tt.shown, msg)
		}
		if more := tt.pods - tt.shown; more > 0 && !strings.HasSuffix(msg, fmt.Sprintf("; and %d more", more)) {
			t.Errorf("%d pods: message %q", tt.pods, msg)
		}
	}
}

func TestShorten(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"0123456789", 10, "0123456789"},
		{"0123456789abcdefghij", 14, "012 ... efghij"},
		{"ééééééééééééééééééééé", 14, "é ... ééé"}, // never half a rune
	}
	for _, tt := range tests {
		got := shorten(tt.s, tt.n)
		if got != tt.want || len(got) > tt.n {
			t.Errorf("shorten(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

func TestWithoutRestartCounts(t *testing.T) {
	a := "2 of 3 pods failing: chat-1 CrashLoopBackOff (exit 1, 4 restarts): x; chat-2 ImagePullBackOff (1 restart): y"
	b := "2 of 3 pods failing: chat-1 CrashLoopBackOff (exit 1, 5 restarts): x; chat-2 ImagePullBackOff (2 restarts): y"
	if withoutRestartCounts(a) != withoutRestartCounts(b) {
		t.Errorf("%q\n!= %q", withoutRestartCounts(a), withoutRestartCounts(b))
	}
	c := "2 of 3 pods failing: chat-1 CrashLoopBackOff (exit 2, 5 restarts): x; chat-2 ImagePullBackOff (2 restarts): y"
	if withoutRestartCounts(b) == withoutRestartCounts(c) {
		t.Error("a different exit code is hidden")
	}
}
