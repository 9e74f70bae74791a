package gwproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// Bounds of the harness's own waits.
const (
	StartTimeout  = 60 * time.Second // a gateway process until /readyz answers 200
	startAttempts = 3                // a port picked free may be taken before the child binds it
	pollEvery     = 50 * time.Millisecond
)

// Gateway is one gateway process.
type Gateway struct {
	*Proc
	Bin        string
	ID         string
	ClientAddr string
	AdminAddr  string
	// WebSocketAddr is listen.websocket's address (with GatewayOptions.WebSocket).
	WebSocketAddr string
	Config        config.Config
	ConfigPath    string
}

// GatewayOptions say how to start a gateway.
type GatewayOptions struct {
	Bin string // the gateway binary (Build)
	Dir string // where the configuration file is written
	ID  string // process name and file name prefix
	// Config returns the configuration for the given client and admin listen addresses. A
	// listen.control it leaves empty is a socket of the gateway's own in a short temporary
	// folder (the default path would be shared by every gateway of the machine).
	Config func(clients, admin string) config.Config
	// NoWaitReady returns as soon as the admin port answers /healthz, for tests of a gateway
	// that cannot become ready (WaitReady then waits for readiness).
	NoWaitReady bool
	// WebSocket serves listen.websocket on a free loopback port too (Gateway.WebSocketAddr,
	// WebSocketURL): the Config's listen.websocket (its path, origins, TLS) if it sets one,
	// the defaults otherwise; the address is the harness's.
	WebSocket bool
}

// StartGateway writes a configuration with free ports, starts the process and waits for
// /readyz (or /healthz with NoWaitReady). A port taken between picking and binding makes the
// child exit at once; it is retried with other ports.
func StartGateway(t testing.TB, o GatewayOptions) (*Gateway, error) {
	// Unix socket paths are short (config.MaxControlPathBytes): not under t.TempDir().
	ctlDir, err := os.MkdirTemp("", "gwctl")
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = os.RemoveAll(ctlDir) })
	var last error
	for attempt := range startAttempts {
		addrs, err := FreeAddrs(3)
		if err != nil {
			return nil, err
		}
		g := &Gateway{Bin: o.Bin, ID: o.ID, ClientAddr: addrs[0], AdminAddr: addrs[1], Config: o.Config(addrs[0], addrs[1])}
		if o.WebSocket {
			if g.Config.Listen.WebSocket == nil {
				g.Config.Listen.WebSocket = &config.ListenWebSocket{}
			}
			g.Config.Listen.WebSocket.Address, g.WebSocketAddr = addrs[2], addrs[2]
		}
		if g.Config.Listen.Control == "" {
			g.Config.Listen.Control = filepath.Join(ctlDir, "control.sock")
		}
		data, err := yaml.Marshal(g.Config)
		if err != nil {
			return nil, err
		}
		g.ConfigPath = filepath.Join(o.Dir, fmt.Sprintf("%s.%d.yaml", o.ID, attempt))
		if err := os.WriteFile(g.ConfigPath, data, 0o600); err != nil {
			return nil, err
		}
		if g.Proc, err = Start(t, o.ID, o.Bin, "-config", g.ConfigPath); err != nil {
			return nil, err
		}
		if o.NoWaitReady {
			last = g.waitHTTP("/healthz")
		} else {
			last = g.WaitReady(StartTimeout)
		}
		if last == nil {
			return g, nil
		}
		if !g.Exited() || !strings.Contains(g.Log.String(), "address already in use") {
			return nil, last
		}
	}
	return nil, last
}

// WebSocketURL is the ws:// URL of listen.websocket ("" without GatewayOptions.WebSocket).
func (g *Gateway) WebSocketURL() string {
	w := g.Config.Listen.WebSocket
	if g.WebSocketAddr == "" || w == nil {
		return ""
	}
	path := w.Path
	if path == "" {
		path = config.DefaultWebSocketPath
	}
	return "ws://" + g.WebSocketAddr + path
}

// DrainResult is how `gateway drain` ended.
type DrainResult struct {
	ExitCode int
	Output   string // stdout and stderr, trimmed
	At       time.Time
	Err      error // it could not run, or outlived its limit
}

// OK: the command exited 0 saying the drain finished.
func (r DrainResult) OK() bool { return r.Err == nil && r.ExitCode == 0 && r.Output == "drained" }

// PreStop does what the kubelet does with the operator's preStop exec hook: it runs `gateway
// drain -socket <listen.control> -wait` as a process, which returns once the drain finished,
// bounded by terminationGracePeriod as the kubelet bounds the hook.
func (g *Gateway) PreStop() DrainResult {
	d := g.Config.Drain
	d.Default() // as the gateway reads it
	ctx, cancel := context.WithTimeout(context.Background(), d.TerminationGracePeriod())
	defer cancel()
	cmd := exec.CommandContext(ctx, g.Bin, "drain", "-socket", g.Config.Listen.Control, "-wait")
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	r := DrainResult{Output: strings.TrimSpace(string(out)), At: time.Now()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && ctx.Err() == nil:
		r.ExitCode = exit.ExitCode()
	case err != nil:
		r.Err = err
	}
	return r
}

// WaitReady polls /readyz until 200 (every Kafka partition positioned) or limit.
func (g *Gateway) WaitReady(limit time.Duration) error {
	return g.waitHTTPFor("/readyz", limit)
}

func (g *Gateway) waitHTTP(path string) error { return g.waitHTTPFor(path, StartTimeout) }

func (g *Gateway) waitHTTPFor(path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	last := "no answer"
	for time.Now().Before(deadline) {
		if g.Exited() {
			return fmt.Errorf("%s exited before %s answered (%v):\n%s", g.ID, path, g.WaitErr, g.Log.Tail(30))
		}
		code, body, err := g.Get(path)
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = body
		}
		time.Sleep(pollEvery) // readiness has no push notification
	}
	return fmt.Errorf("%s: %s not 200 after %s (%s):\n%s", g.ID, path, limit, last, g.Log.Tail(30))
}

// Get fetches path from the admin port: status code and body (trimmed).
func (g *Gateway) Get(path string) (int, string, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + g.AdminAddr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

// Readyz is /readyz: "" when ready, else the body ("not ready: <reasons>").
func (g *Gateway) Readyz() (string, error) {
	code, body, err := g.Get("/readyz")
	if err != nil {
		return "", err
	}
	if code == http.StatusOK {
		return "", nil
	}
	return body, nil
}

// Status is the part of /status (app.Status) the tests read.
type Status struct {
	ServerID    string `json:"serverID"`
	Draining    bool   `json:"draining"`
	Connections int64  `json:"connections"`
	Sessions    int    `json:"sessions"`
}

// Status reads /status.
func (g *Gateway) Status() (Status, error) {
	var st Status
	code, body, err := g.Get("/status")
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("%s /status: %d %s", g.ID, code, body)
	}
	return st, json.Unmarshal([]byte(body), &st)
}

// FreeAddrs returns n loopback addresses whose ports were free a moment ago: all n are
// bound at once (so they differ), then released for the child to bind.
func FreeAddrs(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// WaitDial waits until addr accepts TCP connections, or p exits.
func WaitDial(p *Proc, addr string) error {
	deadline := time.Now().Add(StartTimeout)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("%s exited (%v):\n%s", p.Name, p.WaitErr, p.Log.Tail(20))
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = conn.Close()
			return nil
		}
		time.Sleep(pollEvery) // nothing to wait on: the child tells us nothing when it listens
	}
	return fmt.Errorf("%s not listening on %s after %s", p.Name, addr, StartTimeout)
}
