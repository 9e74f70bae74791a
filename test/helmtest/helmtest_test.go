package helmtest_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tcpgateway/tcpgateway/test/helmtest"
)

func TestHelmRuns(t *testing.T) {
	out, err := exec.Command(helmtest.Binary(t), "version", "--template", "{{.Version}}").CombinedOutput()
	if err != nil {
		t.Fatalf("helm version: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, "v3.22.") {
		t.Errorf("helm version = %q, want the pinned v3.22.x", got)
	}
}
