package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/app"
	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/rebalance"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

func post(t *testing.T, url, auth string, body []byte) (int, rebalance.Answer) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set(rebalance.Header, auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a rebalance.Answer
	_ = json.Unmarshal(b, &a)
	return resp.StatusCode, a
}

// The operator's way in (POST /rebalance on the admin port) against other pods of the
// cluster: an unsigned or wrongly signed request, one for another pod, and a replay of a
// request seen on the wire are refused, counted, and move nobody; the operator's signed
// request moves a session (GOAWAY REBALANCE).
func TestRebalanceEndpointRefusesForgedAndReplayed(t *testing.T) {
	key := bytes.Repeat([]byte{0x5a}, rebalance.KeyBytes)
	keyFile := filepath.Join(t.TempDir(), "rebalance-key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, func(c *config.Config) { c.Listen.RebalanceKeyFile = keyFile })
	url := "http://" + a.AdminAddr() + rebalance.Path

	goAway := make(chan *pb.GoAway, 4)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString([]byte("app-test-secret-0123456789abcdef0123"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.Connect(ctx, client.Options{Addr: a.ClientAddr(), Token: tok, NoReconnect: true,
		OnDisconnect: func(err error) {
			var ga *client.GoAwayError
			if errors.As(err, &ga) {
				goAway <- ga.GoAway
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	wait.For(t, 5*time.Second, "the session registered", func() bool { return a.Server().Sessions().Len() == 1 })

	started := func() float64 {
		return metricValue(t, a, "tcpgw_rebalance_requests_total", "result", "started")
	}
	r, err := rebalance.New("gw-app", 1, 10, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body, auth, err := rebalance.Sign(key, r)
	if err != nil {
		t.Fatal(err)
	}
	_, forged, _ := rebalance.Sign(bytes.Repeat([]byte{0x11}, rebalance.KeyBytes), r)
	other := r
	other.Pod = "gw-other"
	otherBody, otherAuth, _ := rebalance.Sign(key, other)
	for _, tc := range []struct {
		name       string
		auth       string
		body       []byte
		wantStatus int
		want       rebalance.Reason
	}{
		{"unsigned", "", body, http.StatusUnauthorized, rebalance.Unauthenticated},
		{"another key", forged, body, http.StatusUnauthorized, rebalance.Unauthenticated},
		{"another pod", otherAuth, otherBody, http.StatusUnauthorized, rebalance.WrongPod},
	} {
		if code, ans := post(t, url, tc.auth, tc.body); code != tc.wantStatus || ans.Result != string(tc.want) {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, code, ans, tc.wantStatus, tc.want)
		}
	}
	if n := started(); n != 0 {
		t.Fatalf("forged requests started %v rebalances", n)
	}
	select {
	case g := <-goAway:
		t.Fatalf("a forged request moved the client: %v", g)
	default:
	}

	if code, ans := post(t, url, auth, body); code != http.StatusAccepted || ans.Result != rebalance.ResultStarted {
		t.Fatalf("the operator's request: %d %+v", code, ans)
	}
	select {
	case g := <-goAway:
		if g.Reason != pb.GoAway_REASON_REBALANCE {
			t.Errorf("GOAWAY reason %v, want REBALANCE", g.Reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no GOAWAY after the operator's request")
	}
	// The same bytes again, as someone who saw them on the wire would send them.
	if code, ans := post(t, url, auth, body); code != http.StatusUnauthorized || ans.Result != string(rebalance.Replayed) {
		t.Errorf("replay: %d %+v, want 401 replayed", code, ans)
	}
	if n := started(); n != 1 {
		t.Errorf("%v rebalances started, want 1", n)
	}
	for reason, want := range map[rebalance.Reason]float64{rebalance.Unauthenticated: 2, rebalance.WrongPod: 1, rebalance.Replayed: 1} {
		if got := metricValue(t, a, "tcpgw_rebalance_refused_total", "reason", string(reason)); got != want {
			t.Errorf("tcpgw_rebalance_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if code, _ := get(t, url); code != http.StatusMethodNotAllowed {
		t.Errorf("GET %s = %d, want 405", rebalance.Path, code)
	}
}

// Without listen.rebalanceKeyFile there is no endpoint; with a key file that is missing or
// too short the gateway does not start.
func TestRebalanceEndpointNeedsAKey(t *testing.T) {
	a := startApp(t)
	if code, _ := post(t, "http://"+a.AdminAddr()+rebalance.Path, "", []byte("{}")); code != http.StatusNotFound {
		t.Errorf("POST %s without a key file: %d, want 404", rebalance.Path, code)
	}
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{short, filepath.Join(t.TempDir(), "missing")} {
		cfg := testConfig(t, func(c *config.Config) { c.Listen.RebalanceKeyFile = path })
		if _, err := app.New(cfg, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("a gateway started with the rebalance key file %s", path)
		}
	}
}

// metricValue is the counter name{label=value} of a's registry, 0 when absent.
func metricValue(t *testing.T, a *app.App, name, label, value string) float64 {
	t.Helper()
	families, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
