package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tcpgateway/tcpgateway/test/repo"
)

// The commands `make demo` prints (hack/demo-usage.sh) work as printed from any directory:
// run from an unrelated folder, each reaches the binary it names, kubectl through the printed
// alias with the demo's kubeconfig. The binaries are stand-ins that record how they were
// called; the paths hold a space, so the quoting is exercised too.
func TestDemoInstructionsWorkFromAnyDirectory(t *testing.T) {
	top, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	root := filepath.Join(tmp, "demo root")
	assets := filepath.Join(tmp, "k8s assets")
	calls := filepath.Join(tmp, "calls")
	for _, dir := range []string{filepath.Join(root, "bin"), assets} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A stand-in writes one line per call: its path, then its arguments, tab-separated.
	stub := "#!/bin/sh\n{ printf '%s' \"$0\"; for a in \"$@\"; do printf '\\t%s' \"$a\"; done; echo; } >> '" + calls + "'\n"
	for _, p := range []string{filepath.Join(root, "bin", "tcpgwctl"), filepath.Join(assets, "kubectl")} {
		if err := os.WriteFile(p, []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "demo-watch.log"), []byte("connected: session s1, user alice, gateway chat-0\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(filepath.Join(top, "hack", "demo-usage.sh"))
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "DEMO_ROOT="+root, "KUBECTL="+filepath.Join(assets, "kubectl"),
		"ADDRESS=127.0.20.1:7000", "BOOTSTRAP=127.0.0.1:9092", "DOWNLINK=default.chat.downlink",
		"RECEIPTS=default.chat.receipts", "TOKEN=tok.en.value")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("demo-usage.sh: %v", err)
	}
	text := string(out)

	const start = "In another terminal (from any directory):\n"
	i := strings.Index(text, start)
	if i < 0 {
		t.Fatalf("no %q in:\n%s", start, text)
	}
	block, _, _ := strings.Cut(text[i+len(start):], "\n\n")
	var script strings.Builder
	script.WriteString("set -e\nshopt -s expand_aliases\n")
	for line := range strings.SplitSeq(block, "\n") {
		script.WriteString(strings.TrimPrefix(line, "  ") + "\n")
	}
	elsewhere := t.TempDir()
	run := exec.Command("bash", "-c", script.String())
	run.Dir = elsewhere
	run.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + elsewhere}
	if b, err := run.CombinedOutput(); err != nil {
		t.Fatalf("the printed commands failed from %s: %v\n%s\ncommands:\n%s", elsewhere, err, b, block)
	}

	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	var ctl, kubectl [][]string
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		switch f[0] {
		case filepath.Join(root, "bin", "tcpgwctl"):
			ctl = append(ctl, f[1:])
		case filepath.Join(assets, "kubectl"):
			kubectl = append(kubectl, f[1:])
		default:
			t.Errorf("unexpected call %q", line)
		}
	}
	var verbs []string
	for _, c := range ctl {
		v := c[0]
		if slices.Contains(c, "-ack") {
			v += " -ack"
			if !slices.Contains(c, "-receipts") || !slices.Contains(c, "alice") {
				t.Errorf("push -ack without -receipts or not to alice: %q", c)
			}
		}
		verbs = append(verbs, v)
	}
	if want := []string{"request", "push", "push -ack", "connect"}; !slices.Equal(verbs, want) {
		t.Errorf("tcpgwctl ran %q, want %q", verbs, want)
	}
	if len(kubectl) != 3 {
		t.Errorf("kubectl ran %d times, want 3: %q", len(kubectl), kubectl)
	}
	for _, c := range kubectl {
		if len(c) < 2 || c[0] != "--kubeconfig" || c[1] != filepath.Join(root, "bin", "demo.kubeconfig") {
			t.Errorf("kubectl without the demo's absolute kubeconfig: %q", c)
		}
	}

	// push -ack waits for an ack from a session of alice: the demo starts that client (and
	// waits for its handshake) before printing, and says so.
	if !strings.Contains(text, "watching client  user alice, started by the demo") {
		t.Error("the instructions do not say that a watching client of alice is running")
	}
	demo := read(t, "hack/demo.sh")
	w, u := strings.Index(demo, "bin/tcpgwctl watch"), strings.Index(demo, "hack/demo-usage.sh")
	if w < 0 || u < 0 || w > u || !strings.Contains(demo[w:u], "grep -q '^connected: '") {
		t.Error("hack/demo.sh does not start the watching client and wait for its handshake before printing the instructions")
	}
	if !strings.Contains(read(t, "cmd/tcpgwctl/session.go"), `"connected: session %s`) {
		t.Error("tcpgwctl no longer prints the line hack/demo.sh waits for")
	}
}
