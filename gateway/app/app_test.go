package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/app"
	"github.com/tcpgateway/tcpgateway/gateway/config"
)

func startApp(t *testing.T) *app.App {
	t.Helper()
	key := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(key, []byte("app-test-secret-0123456789abcdef0123"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		ServerID: "gw-app",
		Listen:   config.Listen{Clients: "127.0.0.1:0", Admin: "127.0.0.1:0"},
		Auth:     config.Auth{JWT: &config.JWTAuth{HS256SecretFile: key}},
		Routes:   []config.Route{{Service: "echo", URL: "http://127.0.0.1:1"}},
		Drain: config.Drain{
			DeregistrationDelay: config.Duration{Duration: 200 * time.Millisecond},
			SpreadWindow:        config.Duration{Duration: 100 * time.Millisecond},
			FlushTimeout:        config.Duration{Duration: time.Second},
			HardDeadline:        config.Duration{Duration: 5 * time.Second},
		},
	}
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg, slog.New(slog.DiscardHandler))
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
	if code, _ := get(t, base+"/debug/pprof/"); code != 200 {
		t.Errorf("/debug/pprof/ = %d", code)
	}
}

// The preStop hook's call starts the drain and answers when it is over; readiness fails from
// the start; a second call (or SIGTERM) joins the same drain.
func TestDrainEndpointIsIdempotentAndWaits(t *testing.T) {
	a := startApp(t)
	base := "http://" + a.AdminAddr()

	done := make(chan string, 2)
	for range 2 {
		go func() {
			resp, err := http.Get(base + "/drain?wait=true")
			if err != nil {
				done <- err.Error()
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			done <- strings.TrimSpace(string(body)) + " " + http.StatusText(resp.StatusCode)
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := get(t, base+"/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "draining") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %q after the drain started", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 2 {
		select {
		case got := <-done:
			if got != "drained OK" {
				t.Errorf("/drain?wait=true answered %q", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("/drain?wait=true did not return")
		}
	}
	select {
	case <-a.Drained():
	default:
		t.Error("Drained not closed after /drain returned")
	}
}
