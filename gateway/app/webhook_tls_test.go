package app_test

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/app"
	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/tlstest"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// handshake connects once with token and returns the connect error (nil: authenticated).
func handshake(t *testing.T, addr, token string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{Addr: addr, Token: token, NoReconnect: true})
	if err == nil {
		c.Close()
	}
	return err
}

// TestWebhookOverHTTPSWithCAFile: a gateway whose auth webhook is an https server with a
// certificate its auth.webhook.caFile does not vouch for refuses handshakes as
// webhook_unavailable, counts them as tcpgw_auth_webhook_failures_total{cause="tls_failed"},
// and keeps serving; once the CA file is replaced by one with the webhook's CA (as the
// kubelet replaces a mounted Secret or ConfigMap), handshakes are authenticated, without a
// restart.
func TestWebhookOverHTTPSWithCAFile(t *testing.T) {
	webhook := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"allowed":true,"userID":"user-https"}`)
	}))
	webhook.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	webhook.StartTLS()
	t.Cleanup(webhook.Close)

	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, tlstest.MustCA(t, "unrelated CA").PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, func(c *config.Config) {
		c.Auth.JWT = nil
		c.Auth.Webhook = &config.WebhookAuth{URL: webhook.URL + "/verify", CAFile: caFile}
	})
	failures := func(cause string) float64 { return webhookFailures(t, a, cause) }

	err := handshake(t, a.ClientAddr(), "some-token")
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED || se.Message != "webhook_unavailable" {
		t.Fatalf("handshake with an untrusted webhook: err = %v, want UNAUTHENTICATED webhook_unavailable", err)
	}
	if got := failures("tls_failed"); got != 1 {
		t.Errorf(`tcpgw_auth_webhook_failures_total{cause="tls_failed"} = %v, want 1`, got)
	}
	if got := failures("unreachable"); got != 0 {
		t.Errorf(`tcpgw_auth_webhook_failures_total{cause="unreachable"} = %v, want 0`, got)
	}
	if code, _ := get(t, "http://"+a.AdminAddr()+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d after the refused handshake", code)
	}

	// Rotate: the kubelet writes a new file and swaps it in.
	trusted := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: webhook.Certificate().Raw})
	tmp := caFile + ".new"
	if err := os.WriteFile(tmp, trusted, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, caFile); err != nil {
		t.Fatal(err)
	}
	// The gateway checks the file at most once a second: poll the handshake (bounded).
	wait.For(t, 10*time.Second, "a handshake authenticated by the webhook after the CA rotation", func() bool {
		return handshake(t, a.ClientAddr(), "some-token") == nil
	})
	if failures("tls_failed") < 1 {
		t.Errorf("the tls_failed count went down")
	}
}

// webhookFailures reads tcpgw_auth_webhook_failures_total{cause} from the app's registry; a
// missing series fails the test (every cause is exported from the start).
func webhookFailures(t *testing.T, a *app.App, cause string) float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tcpgw_auth_webhook_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "cause" && l.GetValue() == cause {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no tcpgw_auth_webhook_failures_total{cause=%q} series", cause)
	return 0
}
