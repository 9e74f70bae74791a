package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/app"
	"github.com/tcpgateway/tcpgateway/gateway/config"
)

func startApp(t *testing.T, mutate ...func(*config.Config)) *app.App {
	t.Helper()
	a, err := app.New(testConfig(t, mutate...), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	return a
}

// testConfig is a valid configuration on loopback ports, changed by mutate.
func testConfig(t *testing.T, mutate ...func(*config.Config)) *config.Config {
	t.Helper()
	key := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(key, []byte("app-test-secret-0123456789abcdef0123"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		ServerID: "gw-app",
		Listen:   config.Listen{Clients: "127.0.0.1:0", Admin: "127.0.0.1:0"},
		Auth:     config.Auth{JWT: &config.JWTAuth{HS256SecretFile: key, SkipIssuerCheck: true, SkipAudienceCheck: true}},
		Routes:   []config.Route{{Service: "echo", URL: "http://127.0.0.1:1"}},
		Drain: config.Drain{
			DeregistrationDelay: config.Duration{Duration: 200 * time.Millisecond},
			SpreadWindow:        config.Duration{Duration: 100 * time.Millisecond},
			FlushTimeout:        config.Duration{Duration: time.Second},
			HardDeadline:        config.Duration{Duration: 5 * time.Second},
		},
	}
	for _, m := range mutate {
		m(cfg)
	}
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestAdminEndpoints(t *testing.T) {
	a := startApp(t)
	base := "http://" + a.AdminAddr()

	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d before any drain", code)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, "tcpgw_connections ") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, missing gateway or runtime metrics", code)
	}
	code, body = get(t, base+"/status")
	var st app.Status
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || st.ServerID != "gw-app" || st.Draining {
		t.Errorf("/status = %d %s", code, body)
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ = %d on the admin port, want 404 (pprof is on its own loopback listener)", code)
	}
	if a.PprofAddr() != "" {
		t.Errorf("pprof listening on %s without listen.pprof", a.PprofAddr())
	}
}

// The admin port is reachable from other pods: it answers GET and HEAD on its four paths
// and nothing else, and nothing on it changes the gateway.
func TestAdminPortIsReadOnly(t *testing.T) {
	a := startApp(t)
	base := "http://" + a.AdminAddr()
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/healthz", http.StatusOK},
		{http.MethodHead, "/healthz", http.StatusOK},
		{http.MethodHead, "/readyz", http.StatusOK},
		{http.MethodHead, "/metrics", http.StatusOK},
		{http.MethodHead, "/status", http.StatusOK},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodPut, "/readyz", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodPatch, "/status", http.StatusMethodNotAllowed},
		{http.MethodOptions, "/status", http.StatusMethodNotAllowed},
		{http.MethodGet, "/drain", http.StatusNotFound},
		{http.MethodPost, "/drain", http.StatusNotFound},
		{http.MethodGet, "/drain?wait=true", http.StatusNotFound},
		{http.MethodGet, "/debug/pprof/", http.StatusNotFound},
		{http.MethodGet, "/debug/pprof/profile?seconds=1", http.StatusNotFound},
		{http.MethodGet, "/", http.StatusNotFound},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, base+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
		if tt.want == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q, want \"GET, HEAD\"", tt.method, tt.path, resp.Header.Get("Allow"))
		}
	}
	if r := a.Ready(); r != "" {
		t.Errorf("not ready after the requests: %s", r)
	}
}

// listen.pprof serves the profiles on its own (loopback) listener, not on the admin port.
func TestPprofOnItsOwnListenerWhenSet(t *testing.T) {
	a := startApp(t, func(c *config.Config) { c.Listen.Pprof = "127.0.0.1:0" })
	host, _, err := net.SplitHostPort(a.PprofAddr())
	if err != nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("pprof on %q, want a loopback address", a.PprofAddr())
	}
	if code, body := get(t, "http://"+a.PprofAddr()+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof index = %d", code)
	}
	if code, _ := get(t, "http://"+a.AdminAddr()+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("admin port /debug/pprof/ = %d, want 404", code)
	}
}

// TestNewRefusesUnreadableKafkaSecrets: kafka.tls and kafka.sasl files are read at start, so
// a missing Secret key or a bad PEM stops the gateway with the field's name, instead of a pod
// that runs and is never ready.
func TestNewRefusesUnreadableKafkaSecrets(t *testing.T) {
	dir := t.TempDir()
	key, notPEM := filepath.Join(dir, "hs256"), filepath.Join(dir, "ca.crt")
	for _, f := range []string{key, notPEM} {
		if err := os.WriteFile(f, []byte("app-test-secret-0123456789abcdef0123"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		tls  *config.KafkaTLS
		sasl *config.KafkaSASL
		want string
	}{
		{"password file missing", nil, &config.KafkaSASL{UsernameFile: key, PasswordFile: filepath.Join(dir, "absent")}, "kafka.sasl: kafka SASL credentials: open "},
		{"CA bundle not PEM", &config.KafkaTLS{CAFile: notPEM}, nil, "kafka.tls: kafka TLS: the CA bundle holds no PEM certificate"},
	} {
		cfg := &config.Config{
			ServerID: "gw-app",
			Listen:   config.Listen{Clients: "127.0.0.1:0", Admin: "127.0.0.1:0"},
			Auth:     config.Auth{JWT: &config.JWTAuth{HS256SecretFile: key, SkipIssuerCheck: true, SkipAudienceCheck: true}},
			Kafka:    config.Kafka{Brokers: []string{"127.0.0.1:9"}, DownlinkTopic: "d", ReceiptsTopic: "r", TLS: tt.tls, SASL: tt.sasl},
		}
		cfg.Default()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		if _, err := app.New(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: app.New err = %v, want containing %q", tt.name, err, tt.want)
		}
	}
}
