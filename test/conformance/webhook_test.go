package conformance

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// webhook is an auth webhook (gateway/auth's protocol) on 127.0.0.1: a token "opaque:<user>" is
// allowed as that user, any other is denied; while unavailable it answers 503.
type webhook struct {
	*httptest.Server
	mu          sync.Mutex // guards the fields below
	unavailable bool
	refused503  int      // calls answered 503
	devices     []string // the device id of every call
}

func startWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.Server = httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(w.Close)
	return w
}

func (w *webhook) serve(rw http.ResponseWriter, r *http.Request) {
	var req struct {
		Token    string `json:"token"`
		DeviceID string `json:"deviceID"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 1<<16)).Decode(&req); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.devices = append(w.devices, req.DeviceID)
	down := w.unavailable
	if down {
		w.refused503++
	}
	w.mu.Unlock()
	if down {
		http.Error(rw, "down for the test", http.StatusServiceUnavailable)
		return
	}
	ans := map[string]any{"allowed": false, "reason": "not a token of this test"}
	if user, ok := strings.CutPrefix(req.Token, "opaque:"); ok {
		ans = map[string]any{"allowed": true, "userID": user}
	}
	_ = json.NewEncoder(rw).Encode(ans)
}

func (w *webhook) setUnavailable(down bool) {
	w.mu.Lock()
	w.unavailable = down
	w.mu.Unlock()
}

func (w *webhook) refusedCalls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.refused503
}

// A gateway that checks opaque tokens with an auth webhook: an allowed token connects as the
// webhook's user (the device id reaches the webhook); a denied one fails connect with
// UNAUTHENTICATED denied; while the webhook is unavailable a client with a fixed token keeps
// reconnecting (webhook_unavailable is the gateway's problem, not the token's) and is back once
// the webhook answers again.
func webhookAuth(t *testing.T, s *suite) {
	wh := startWebhook(t)
	f := StartFleet(t, FleetOptions{Configure: func(c *config.Config) {
		c.Auth.JWT = nil
		c.Auth.Webhook = &config.WebhookAuth{URL: wh.URL, Timeout: config.Duration{Duration: 2 * time.Second}}
	}})
	link := StartLink(t, f.Listener(f.Gateways[0]))
	st := s.connect(t, "", link.Addr(), "opaque:wh-user", fast)
	if st.Ack.UserID != "wh-user" {
		t.Fatalf("ack user %q, want the webhook's wh-user", st.Ack.UserID)
	}
	wh.mu.Lock()
	devices := strings.Join(wh.devices, ",")
	wh.mu.Unlock()
	if devices != "conformance-device" {
		t.Fatalf("the webhook saw device ids %q, want the client's conformance-device", devices)
	}
	r := s.d.MustCall(wire.Command{Op: "request", Service: "echo", Method: "hello", Payload: []byte("x")})
	if r.Response == nil || !strings.HasPrefix(string(r.Response.Payload), "wh-user ") {
		t.Fatalf("the backend answered %+v, want the webhook's user as the caller", r.Response)
	}

	denied := s.d.Call(wire.Command{Op: "connect", Client: "denied", Address: link.Addr(), Token: "opaque-but-unknown", DeviceID: "conformance-device"})
	if e := denied.Error; e == nil || e.Kind != wire.KindServerError || e.Code != "UNAUTHENTICATED" || e.Message != "denied" {
		t.Fatalf("connect with a denied token: %s, want server_error UNAUTHENTICATED denied", failureString(denied.Error))
	}

	mark := s.d.Mark()
	wh.setUnavailable(true)
	link.Cut()
	s.d.WaitEvent(mark, eventTimeout, "the loss", IsState("", "disconnected"))
	wait.For(t, 15*time.Second, "three reconnects refused as webhook_unavailable", func() bool { return wh.refusedCalls() >= 3 })
	if e, ok := s.d.Find(mark, IsState("", "stopped")); ok {
		t.Fatalf("a fixed-token client stopped on webhook_unavailable: %s", failureString(e.Cause))
	}
	wh.setUnavailable(false)
	s.d.WaitEvent(mark, eventTimeout, "the reconnect once the webhook answers", IsState("", "connected"))
	s.d.MustCall(wire.Command{Op: "ping"})
}
