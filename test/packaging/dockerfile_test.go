// Package packaging checks that what cannot be exercised on this machine (image builds) stays
// consistent with what can (make build).
package packaging

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/test/repo"
)

func read(t *testing.T, rel string) string {
	t.Helper()
	top, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(top, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The image is built with the same flags, packages and CGO setting as `make build`.
func TestDockerfileBuildsLikeTheMakefile(t *testing.T) {
	makefile, dockerfile := read(t, "Makefile"), read(t, "Dockerfile")

	flags := regexp.MustCompile(`(?m)^BUILD_FLAGS := (.+)$`).FindStringSubmatch(makefile)
	if flags == nil {
		t.Fatal("no BUILD_FLAGS in the Makefile")
	}
	want := "go build " + strings.TrimSpace(flags[1]) + " -o /out/ ./cmd/..."
	if !strings.Contains(dockerfile, "RUN "+want+"\n") {
		t.Errorf("the Dockerfile does not run %q", want)
	}
	if !strings.Contains(makefile, "CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o $(BIN)/ ./cmd/...") {
		t.Error("make build no longer builds ./cmd/... with BUILD_FLAGS and CGO off")
	}
	if !strings.Contains(dockerfile, "ENV CGO_ENABLED=0") {
		t.Error("the image build does not disable cgo: the binaries would not run on distroless/static")
	}

	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(read(t, "go.mod"))
	if goVersion == nil || !strings.Contains(dockerfile, "FROM golang:"+goVersion[1]+".") {
		t.Errorf("the builder image does not use go %v from go.mod", goVersion)
	}
}

// Everything under cmd/ reaches the build context, with the Go SDK's module that go.mod
// replaces with its directory.
func TestDockerignoreKeepsTheSources(t *testing.T) {
	ignore := read(t, ".dockerignore")
	for _, dir := range []string{"cmd/", "gateway/", "go.mod", "go.sum", "sdk/go/"} {
		if !strings.Contains(ignore, "!"+dir) {
			t.Errorf(".dockerignore excludes %s", dir)
		}
	}
}

// The image's `go mod download` sees only the files copied before it, which must include the
// go.mod of every module that go.mod replaces with a directory (the Go SDK's). The step is
// replayed here on a copy of those files, offline, from the module cache. The cache is first
// filled from the work tree itself (with the machine's GOPROXY): a fresh machine's cache holds
// only what its builds needed, not every module `go mod download` lists (cobra's mousetrap is
// for Windows only), and the offline replay would fail on that, not on the Dockerfile.
func TestDockerfileDownloadsWithWhatItCopied(t *testing.T) {
	top, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	fill := exec.CommandContext(ctx, "go", "mod", "download")
	fill.Dir, fill.Env = top, append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if out, err := fill.CombinedOutput(); err != nil {
		t.Fatalf("go mod download in the work tree: %v\n%s", err, out)
	}
	before, _, ok := strings.Cut(read(t, "Dockerfile"), "\nRUN go mod download\n")
	if !ok {
		t.Fatal("the Dockerfile does not run go mod download")
	}
	dir := t.TempDir()
	copied := 0
	for _, line := range strings.Split(before, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "COPY" {
			continue
		}
		dest := f[len(f)-1]
		if strings.HasPrefix(f[1], "--") || !strings.HasSuffix(dest, "/") {
			t.Fatalf("this test replays only COPY src... dir/, not %q", line)
		}
		if err := os.MkdirAll(filepath.Join(dir, dest), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, src := range f[1 : len(f)-1] {
			b, err := os.ReadFile(filepath.Join(top, src))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, dest, filepath.Base(src)), b, 0o644); err != nil {
				t.Fatal(err)
			}
			copied++
		}
	}
	if copied == 0 {
		t.Fatal("the Dockerfile copies nothing before go mod download")
	}
	goIn(t, dir, "mod", "download")
}
