package conformance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
	"github.com/tcpgateway/tcpgateway/test/repo"
	"github.com/tcpgateway/tcpgateway/test/sdkdriver"
)

// EnvDriver chooses the driver: empty or "go" builds and runs the Go driver
// (test/conformance/godriver); anything else is a command line run with `sh -c`, e.g.
// "java -jar sdk/java/driver/target/driver.jar" or "node sdk/ts/dist/driver.js".
const EnvDriver = "TCPGW_CONFORMANCE_DRIVER"

// The driver process and its events (test/sdkdriver, shared with test/drain).
type (
	Driver   = sdkdriver.Driver
	Received = sdkdriver.Received
)

const eventTimeout = sdkdriver.EventTimeout

func IsState(client, state string) func(Received) bool { return sdkdriver.IsState(client, state) }
func IsPush(client, messageID string) func(Received) bool {
	return sdkdriver.IsPush(client, messageID)
}
func failureString(f *wire.Failure) string { return sdkdriver.FailureString(f) }
func describe(es []Received) string        { return sdkdriver.Describe(es) }

var (
	buildOnce sync.Once
	goDriver  string
	buildErr  error
	buildDir  string
)

// driverCommand is the command line the environment chooses.
func driverCommand(t testing.TB) []string {
	t.Helper()
	choice := strings.TrimSpace(os.Getenv(EnvDriver))
	if choice != "" && choice != "go" {
		return []string{"sh", "-c", choice}
	}
	buildOnce.Do(func() {
		root, err := repo.Root()
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, err = os.MkdirTemp("", "tcpgw-godriver-"); err != nil {
			buildErr = err
			return
		}
		goDriver = filepath.Join(buildDir, "godriver")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", goDriver, "./test/conformance/godriver")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build godriver: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return []string{goDriver}
}

// cleanupBuild removes the Go driver built for this test binary.
func cleanupBuild() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

// CapWebSocket is the capability of a driver whose SDK dials ws:// and wss:// URLs.
const CapWebSocket = wire.CapWebSocket

// StartDriver starts the chosen driver and waits for its ready event. It is stopped (stdin
// closed, then killed after a grace period) when the test ends. Over WebSocket a driver
// without capability websocket fails the test: skipping every scenario would pass nothing.
func StartDriver(t testing.TB) *Driver {
	t.Helper()
	d := sdkdriver.Start(t, driverCommand(t), sdkdriver.Options{})
	if overWebSocket() && !d.Caps[CapWebSocket] {
		t.Fatalf("%s=%s: the %s driver lacks capability %q", EnvTransport, transport, d.Name, CapWebSocket)
	}
	return d
}
