package gwproc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/test/repo"
)

// Binaries are the programs the tests run.
type Binaries struct{ Gateway, Echo, Tcpgwctl string }

var (
	buildMu sync.Mutex
	builds  = map[bool]Binaries{} // by race
	binDirs []string
)

// Build compiles cmd/gateway, cmd/tcpgwctl and test/echobackend into a temporary directory,
// once per test binary (and per race setting); race builds them with the race detector
// (heavier, and a race they report fails the test, see Proc).
func Build(t testing.TB, race bool) Binaries {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := builds[race]; ok {
		return b
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "tcpgw-bin-")
	if err != nil {
		t.Fatal(err)
	}
	binDirs = append(binDirs, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	env := append(os.Environ(), "CGO_ENABLED=0")
	if race {
		args = append(args, "-race")
		env = append(os.Environ(), "CGO_ENABLED=1")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/gateway", "./cmd/tcpgwctl", "./test/echobackend")...)
	cmd.Dir = root
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatal(fmt.Errorf("go build: %w\n%s", err, out))
	}
	b := Binaries{Gateway: filepath.Join(dir, "gateway"), Echo: filepath.Join(dir, "echobackend"), Tcpgwctl: filepath.Join(dir, "tcpgwctl")}
	builds[race] = b
	return b
}

// Cleanup removes what Build compiled; TestMain calls it after m.Run.
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	for _, d := range binDirs {
		_ = os.RemoveAll(d)
	}
	binDirs = nil
	builds = map[bool]Binaries{}
}
