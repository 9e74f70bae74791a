// Package packaging checks that what cannot be exercised on this machine (image builds) stays
// consistent with what can (make build).
package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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

// Everything under cmd/ reaches the build context.
func TestDockerignoreKeepsTheSources(t *testing.T) {
	ignore := read(t, ".dockerignore")
	for _, dir := range []string{"cmd/", "gateway/", "go.mod", "go.sum"} {
		if !strings.Contains(ignore, "!"+dir) {
			t.Errorf(".dockerignore excludes %s", dir)
		}
	}
}
