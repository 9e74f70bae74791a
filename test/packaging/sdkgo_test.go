package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tcpgateway/tcpgateway/test/repo"
)

const sdkModule = "github.com/tcpgateway/tcpgateway/sdk/go"

// goIn runs the go command in dir (absolute, or relative to the repository) offline and
// without a workspace, and returns its standard output.
func goIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	top, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if !filepath.IsAbs(dir) {
		cmd.Dir = filepath.Join(top, dir)
	}
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOPROXY=off", "GOFLAGS=-mod=readonly")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return stdout.String()
}

// The Go SDK is its own module so that an app using it depends on protobuf and gobwas/ws (its
// WebSocket transport, with gobwas/httphead) and nothing of the gateway's (Kubernetes,
// controller-runtime, Kafka, netpoll).
func TestGoSDKModuleDependsOnProtobufAndWebSocketOnly(t *testing.T) {
	forbidden := []string{"k8s.io/", "sigs.k8s.io/", "github.com/segmentio/", "github.com/cloudwego/",
		"github.com/prometheus/", "github.com/golang-jwt/", "github.com/tcpgateway/tcpgateway@"}

	// The module graph an app inherits: what sdk/go requires and what they require in turn.
	// (go mod graph rather than go list -m all: it works offline, reading go.mod files only.)
	graph := goIn(t, "sdk/go", "mod", "graph")
	var direct []string
	reported := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(graph), "\n") {
		from, to, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("go mod graph line %q", line)
		}
		for _, m := range []string{from, to} {
			for _, f := range forbidden {
				if strings.HasPrefix(m, f) && !reported[m] {
					reported[m] = true
					t.Errorf("the Go SDK's module graph holds %s (edge %q)", m, line)
				}
			}
		}
		if from == sdkModule && !strings.HasPrefix(to, "go@") && !strings.HasPrefix(to, "toolchain@") {
			path, _, _ := strings.Cut(to, "@")
			direct = append(direct, path)
		}
	}
	if want := []string{"github.com/gobwas/httphead", "github.com/gobwas/ws", "google.golang.org/protobuf"}; !slices.Equal(slices.Sorted(slices.Values(direct)), want) {
		t.Errorf("the Go SDK's module requires %v, want %v", direct, want)
	}

	// The packages an app compiles with the SDK: the standard library, the SDK's, protobuf's,
	// gobwas/ws's.
	deps := goIn(t, "sdk/go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./client")
	var sawProtobuf bool
	for _, p := range strings.Fields(deps) {
		switch {
		case strings.HasPrefix(p, "google.golang.org/protobuf/"):
			sawProtobuf = true
		case p == "github.com/gobwas/ws" || strings.HasPrefix(p, "github.com/gobwas/ws/") || p == "github.com/gobwas/httphead":
		case p == sdkModule || strings.HasPrefix(p, sdkModule+"/"):
		default:
			t.Errorf("an app using the Go SDK compiles %s", p)
		}
	}
	if !sawProtobuf {
		t.Errorf("the Go SDK's packages do not import protobuf: go list -deps says\n%s", deps)
	}
}

// The SDK and the gateway speak WebSocket with the same gobwas/ws version: one implementation
// of the mapping's framing to keep up to date.
func TestGoSDKAndGatewayShareTheWebSocketLibrary(t *testing.T) {
	sdk := strings.TrimSpace(goIn(t, "sdk/go", "list", "-m", "-f", "{{.Version}}", "github.com/gobwas/ws"))
	gw := strings.TrimSpace(goIn(t, ".", "list", "-m", "-f", "{{.Version}}", "github.com/gobwas/ws"))
	if sdk != gw {
		t.Errorf("gobwas/ws %s in the SDK, %s in the gateway: want one version", sdk, gw)
	}
}

// The gateway builds against the SDK module of the same commit, not a published version.
func TestMainModuleUsesTheSDKInTheRepository(t *testing.T) {
	if got := strings.TrimSpace(goIn(t, ".", "list", "-m", "-f", "{{.Replace.Path}}", sdkModule)); got != "./sdk/go" {
		t.Errorf("go.mod replaces %s with %q, want ./sdk/go", sdkModule, got)
	}
}
