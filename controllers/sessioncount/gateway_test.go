package sessioncount_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/controllers/sessioncount"
	"github.com/tcpgateway/tcpgateway/gateway/app"
	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

var secret = []byte("sessioncount-test-secret-0123456789abcdef")

// A real gateway's /metrics: the Reader finds its session gauge and follows it as clients
// come and go.
func TestReadsARealGateway(t *testing.T) {
	key := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(key, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		ServerID: "gw-count",
		Listen:   config.Listen{Clients: "127.0.0.1:0", Admin: "127.0.0.1:0"},
		Auth:     config.Auth{JWT: &config.JWTAuth{HS256SecretFile: key, SkipIssuerCheck: true, SkipAudienceCheck: true}},
		Routes:   []config.Route{{Service: "echo", URL: "http://127.0.0.1:1"}},
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

	r := &sessioncount.Reader{}
	target := []sessioncount.Target{{Pod: "gw-count", URL: "http://" + a.AdminAddr() + "/metrics"}}
	sessions := func() int64 {
		c := r.Read(context.Background(), target)[0]
		if c.Err != nil {
			t.Fatalf("reading a real gateway: %v", c.Err)
		}
		return c.Sessions
	}
	if n := sessions(); n != 0 {
		t.Fatalf("%d sessions before any client", n)
	}
	var clients []*client.Client
	for i := range 3 {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "user-" + string(rune('a'+i)), "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := client.Connect(ctx, client.Options{Addr: a.ClientAddr(), Token: tok, NoReconnect: true})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	wait.For(t, 5*time.Second, "3 sessions read", func() bool { return sessions() == 3 })
	_ = clients[0].Close()
	wait.For(t, 5*time.Second, "2 sessions read after a close", func() bool { return sessions() == 2 })
	for _, c := range clients[1:] {
		_ = c.Close()
	}
}
