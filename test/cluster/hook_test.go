package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestResolveHookBinary(t *testing.T) {
	a := &NodeAgent{opts: NodeOptions{Binaries: map[string]string{
		"/bin/sh":          "/bin/sh",
		"example.test/gw":  "/local/gateway", // by image
		"/usr/local/bin/x": "/local/x",
	}}}
	gw := &corev1.Container{Name: "gw", Image: "example.test/gw:v1", Command: []string{"/usr/local/bin/gateway", "-config", "/etc/c.yaml"}}
	tests := []struct {
		name     string
		command  []string
		wantBin  string
		wantArgs []string
		refusal  string
	}{
		{"exact command key", []string{"/bin/sh", "-c", "true"}, "/bin/sh", []string{"-c", "true"}, ""},
		{"the container's own command, mapped by image", []string{"/usr/local/bin/gateway", "drain", "-wait"}, "/local/gateway", []string{"drain", "-wait"}, ""},
		{"unmapped", []string{"/usr/bin/curl", "-X", "POST"}, "", nil, ReasonUnmappedBinary},
		{"empty", nil, "", nil, ReasonUnsupportedPod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin, args, r := a.resolveHookBinary(gw, tt.command)
			if tt.refusal != "" {
				if r == nil || r.reason != tt.refusal {
					t.Fatalf("refusal %v, want %s", r, tt.refusal)
				}
				return
			}
			if r != nil || bin != tt.wantBin || strings.Join(args, " ") != strings.Join(tt.wantArgs, " ") {
				t.Errorf("got %q %q %v, want %q %q", bin, args, r, tt.wantBin, tt.wantArgs)
			}
		})
	}
}

func TestAdmitExecPreStop(t *testing.T) {
	a := &NodeAgent{opts: NodeOptions{Binaries: map[string]string{"example.test/gw": "/local/gateway"}}}
	pod := func(command ...string) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "gw", Image: "example.test/gw:v1", Command: []string{"/usr/local/bin/gateway"},
			Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: command}}},
		}}}}
	}
	if r := a.admit(pod("/usr/local/bin/gateway", "drain", "-wait")); r != nil {
		t.Errorf("exec preStop of the container's binary refused: %v", r)
	}
	if r := a.admit(pod("/bin/sh", "-c", "true")); r == nil || r.reason != ReasonUnmappedBinary {
		t.Errorf("exec preStop of an unmapped binary: %v, want %s", r, ReasonUnmappedBinary)
	}
}

// An exec hook runs as a process of the pod: the container's environment and working
// directory, arguments under a mount path rewritten to the volume's folder, output in the
// container's log; a non-zero exit and a deadline are errors.
func TestExecHookRunsInThePodsEnvironment(t *testing.T) {
	dir := t.TempDir()
	vol := filepath.Join(dir, "volumes", "run")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "c.log")
	a := &NodeAgent{opts: NodeOptions{Binaries: map[string]string{"/bin/sh": "/bin/sh"}}}
	c := &corev1.Container{Name: "c", Image: "example.test/c"}
	spec := &runSpec{
		env:    []string{"PATH=/usr/bin:/bin", "POD_NAME=web-0"},
		dir:    dir,
		mounts: []mount{{container: "/var/run/app", host: vol}},
	}
	run := func(ctx context.Context, script string, args ...string) error {
		return a.execHook(ctx, c, spec, &corev1.ExecAction{Command: append([]string{"/bin/sh", "-c", script, "sh"}, args...)}, logPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := run(ctx, `printf '%s in %s' "$POD_NAME" "$(pwd)" > "$1"; echo hook ran`, "/var/run/app/out"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(vol, "out"))
	if err != nil {
		t.Fatalf("the hook did not write through the rewritten mount path: %v", err)
	}
	if want := "web-0 in " + dir; string(got) != want {
		t.Errorf("hook wrote %q, want %q", got, want)
	}
	if logs, _ := os.ReadFile(logPath); !strings.Contains(string(logs), "hook ran") {
		t.Errorf("hook output not in the container log: %q", logs)
	}

	if err := run(ctx, "exit 3"); err == nil || !strings.Contains(err.Error(), "exited with status 3") {
		t.Errorf("failing hook: %v", err)
	}

	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	if err := run(short, "sleep 30"); err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("hook past its deadline: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("hook past its deadline killed after %s", took)
	}
}
