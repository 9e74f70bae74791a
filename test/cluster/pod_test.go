package cluster

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A failed container's termination message is the tail of its own run's log, bounded like
// the kubelet's (80 lines, 2048 bytes), and only with FallbackToLogsOnError.
func TestTerminationMessage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.log")
	write := func(s string) int64 {
		t.Helper()
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fi, _ := f.Stat()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	fallback := &corev1.Container{TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError}
	file := &corev1.Container{TerminationMessagePolicy: corev1.TerminationMessageReadFile}

	run1 := write("{\"msg\":\"starting\"}\ngateway: first run failed\n")
	run2 := write("gateway: while setting up auth: HS256 secret is 5 bytes, need at least 32\n")
	if got := terminationMessage(fallback, path, run2); got != "gateway: while setting up auth: HS256 secret is 5 bytes, need at least 32\n" {
		t.Errorf("second run: %q", got)
	}
	if got := terminationMessage(fallback, path, run1); !strings.HasPrefix(got, "{\"msg\":\"starting\"}\ngateway: first run failed\ngateway: while") {
		t.Errorf("from the first run: %q", got)
	}
	if got := terminationMessage(file, path, run2); got != "" {
		t.Errorf("policy File: %q, want none", got)
	}
	if got := terminationMessage(fallback, filepath.Join(t.TempDir(), "none.log"), 0); got != "" {
		t.Errorf("no log: %q", got)
	}

	// 100 short lines: the last 80.
	var b strings.Builder
	for i := range 100 {
		b.WriteString(strings.Repeat("x", 3) + string(rune('a'+i%26)) + "\n")
	}
	run3 := write(b.String())
	got := terminationMessage(fallback, path, run3)
	if n := strings.Count(got, "\n"); n != terminationLogLines || !strings.HasSuffix(b.String(), got) {
		t.Errorf("%d lines, want the last %d: %q", n, terminationLogLines, got)
	}
	// Long lines: the last 2048 bytes, cut at a rune boundary.
	run4 := write(strings.Repeat("é", 3000) + "\nthe end\n")
	got = terminationMessage(fallback, path, run4)
	if len(got) > terminationLogBytes || len(got) < terminationLogBytes-1 || !strings.HasSuffix(got, "é\nthe end\n") || !strings.HasPrefix(got, "é") {
		t.Errorf("%d bytes: %q...", len(got), got[:min(len(got), 20)])
	}
}

// A new worker holds its pod from the start: the agent starts its run before handing it the
// pod, and a run that found none dereferenced nil (a panic that ended a whole e2e run).
func TestNewPodWorkerHoldsItsPod(t *testing.T) {
	a := &NodeAgent{log: slog.New(slog.DiscardHandler)}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"}}
	if got := newPodWorker(a, pod).pod(); got != pod {
		t.Fatalf("new worker's pod = %v, want the pod it was made for", got)
	}
}
