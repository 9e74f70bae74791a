package cluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/test/k8stest"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// A node agent with a ShutdownGracePeriod stops its pods as a kubelet's graceful node
// shutdown does: SIGTERM first (a pod that handles it exits 0 on its own), SIGKILL only for
// a pod that outlives its grace period; both are reported Failed with reason Terminated and
// their objects stay. `make demo`'s teardown relies on it to drain the gateway pods.
func TestStopDrainsPods(t *testing.T) {
	if testing.Short() {
		t.Skip("real kube-apiserver and processes; skipped under -short")
	}
	cfg := k8stest.Start(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := StartNodeAgent(ctx, cs, NodeOptions{
		Name: "node-1", Dir: t.TempDir(),
		Binaries:            map[string]string{"/bin/sh": "/bin/sh"},
		ShutdownGracePeriod: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			a.Stop()
		}
	})

	marks := t.TempDir()
	// Each script writes $1 once its SIGTERM disposition is in place; the sleeps are the
	// pod's work, interrupted by the signal sent to the whole process group.
	pod := func(name, script string, grace int64) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeName:                      "node-1",
				AutomountServiceAccountToken:  ptr.To(false),
				TerminationGracePeriodSeconds: ptr.To(grace),
				Containers: []corev1.Container{{
					Name: "main", Image: "example.test/sh",
					Command: []string{"/bin/sh", "-c", script, "sh", filepath.Join(marks, name)},
				}},
			},
		}
	}
	for _, p := range []*corev1.Pod{
		pod("drains", `trap 'echo drained > "$1.term"; exit 0' TERM; : > "$1"; while :; do sleep 0.1; done`, 30),
		pod("stubborn", `trap '' TERM; : > "$1"; while :; do sleep 0.1; done`, 1),
	} {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 30*time.Second, "both pods' processes to be running", func() bool {
		for _, n := range []string{"drains", "stubborn"} {
			if _, err := os.Stat(filepath.Join(marks, n)); err != nil {
				return false
			}
		}
		return true
	})

	start := time.Now()
	a.Stop()
	stopped = true
	took := time.Since(start)

	got := map[string]Termination{}
	for _, term := range a.Terminations() {
		got[term.Name] = term
	}
	if d := got["drains"]; d.ExitCode != 0 || d.GraceKilled || !d.NodeShutdown {
		t.Errorf("the pod handling SIGTERM: %+v, want exit 0, not SIGKILLed, by the node shutdown", d)
	}
	if b, err := os.ReadFile(filepath.Join(marks, "drains.term")); err != nil || string(b) != "drained\n" {
		t.Errorf("the pod's SIGTERM handler did not run: %q %v", b, err)
	}
	if s := got["stubborn"]; s.ExitCode != 137 || !s.GraceKilled || !s.NodeShutdown {
		t.Errorf("the pod ignoring SIGTERM: %+v, want SIGKILLed (137) at the end of its grace period", s)
	}
	// Its 1 s grace period (plus the kubelet's 2 s minimum after preStop) bounds the stop, not
	// the 20 s shutdown period.
	if took > 10*time.Second {
		t.Errorf("Stop took %s", took)
	}
	for _, n := range []string{"drains", "stubborn"} {
		p, err := cs.CoreV1().Pods("default").Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Errorf("pod %s: %v (the object should stay, as the kubelet leaves it)", n, err)
			continue
		}
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != ReasonNodeShutdown {
			t.Errorf("pod %s status %s/%s, want Failed/%s", n, p.Status.Phase, p.Status.Reason, ReasonNodeShutdown)
		}
	}
}
