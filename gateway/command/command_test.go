package command

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

const testSecret = "command-test-hs256-secret-0123456789abcdef"

// running is a gateway started by gatewayCommand in this process.
type running struct {
	control, admin string
	stop           context.CancelFunc // SIGTERM
	done           chan struct{}      // closed when gatewayCommand returned
	err            error              // its result, valid after done
	log            *logLines
}

// logLines collects the JSON log and signals once the control socket is ready.
type logLines struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []map[string]any
	ready chan struct{}
	once  sync.Once
}

func (l *logLines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(b)
	for {
		line, err := l.buf.ReadBytes('\n')
		if err != nil {
			l.buf.Write(line) // partial: keep for the next write
			break
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			l.lines = append(l.lines, m)
			if m["msg"] == "control socket ready" {
				l.once.Do(func() { close(l.ready) })
			}
		}
	}
	return len(b), nil
}

func (l *logLines) field(msg, key string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.lines {
		if m["msg"] == msg {
			s, _ := m[key].(string)
			return s
		}
	}
	return ""
}

// startGateway runs the gateway command with a configuration on loopback and a control
// socket in a fresh directory, and waits until the control socket is served.
func startGateway(t *testing.T) *running {
	t.Helper()
	dir := t.TempDir()
	ctlDir, err := os.MkdirTemp("", "cmd") // unix socket paths must stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(ctlDir) })
	key := filepath.Join(dir, "hs256")
	if err := os.WriteFile(key, []byte(testSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	d := func(v time.Duration) config.Duration { return config.Duration{Duration: v} }
	cfg := config.Config{
		ServerID: "gw-cmd",
		Listen:   config.Listen{Clients: "127.0.0.1:0", Admin: "127.0.0.1:0", Control: filepath.Join(ctlDir, "control.sock")},
		Auth:     config.Auth{JWT: &config.JWTAuth{HS256SecretFile: key, SkipIssuerCheck: true, SkipAudienceCheck: true}},
		Drain: config.Drain{DeregistrationDelay: d(100 * time.Millisecond), SpreadWindow: d(100 * time.Millisecond),
			FlushTimeout: d(time.Second), HardDeadline: d(5 * time.Second)},
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{control: cfg.Listen.Control, stop: cancel, done: make(chan struct{}), log: &logLines{ready: make(chan struct{})}}
	go func() {
		defer close(r.done)
		r.err = gatewayCommand(ctx, []string{"-config", path}, r.log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("gateway did not stop within 10s of its SIGTERM")
		}
	})
	select {
	case <-r.log.ready:
	case <-r.done:
		t.Fatalf("gateway exited before serving its control socket: %v", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("control socket not ready within 10s")
	}
	r.admin = r.log.field("gateway started", "admin")
	return r
}

func httpDo(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// The preStop hook: `gateway drain -wait` returns once the drain finished; the readiness
// failed meanwhile, the gateway exits on its own and removes its socket.
func TestDrainCommandWaitsForTheDrain(t *testing.T) {
	g := startGateway(t)
	if code, _ := httpDo(t, http.MethodGet, "http://"+g.admin+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d before the drain", code)
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"drain", "-socket", g.control, "-wait"}, &stdout, &stderr); code != 0 {
		t.Fatalf("gateway drain -wait exited %d: %s", code, stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != "drained" {
		t.Errorf("gateway drain -wait printed %q", got)
	}
	if g.log.field("drain finished", "took") == "" {
		t.Error("gateway drain -wait returned before the gateway logged the end of its drain")
	}
	select {
	case <-g.done:
		if g.err != nil {
			t.Errorf("gateway exited with %v after its drain", g.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gateway still running 10s after its drain")
	}
	if _, err := os.Lstat(g.control); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
	// Nothing listens any more: the command says so and fails.
	stderr.Reset()
	if code := Main([]string{"drain", "-socket", g.control}, io.Discard, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "no gateway answers on the control socket") {
		t.Errorf("gateway drain with no gateway: exit %d, %q", code, stderr.String())
	}
}

func TestDrainCommandUsage(t *testing.T) {
	for _, args := range [][]string{{"drain", "-bogus"}, {"drain", "now"}, {"-config"}} {
		var stderr bytes.Buffer
		if code := Main(args, io.Discard, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage); stderr %q", args, code, stderr.String())
		}
	}
}

// SIGTERM without a preStop hook (a plain `kill`) runs the same drain and the process exits.
func TestSigtermDrainsAndExits(t *testing.T) {
	g := startGateway(t)
	g.stop()
	select {
	case <-g.done:
		if g.err != nil {
			t.Errorf("gateway exited with %v after SIGTERM", g.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gateway still running 10s after SIGTERM")
	}
	if g.log.field("drain finished", "took") == "" {
		t.Error("no drain logged before the exit")
	}
	if _, err := os.Lstat(g.control); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
}
