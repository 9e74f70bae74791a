package browser

import (
	"strings"
	"testing"
)

// The gateway's origin check as a browser meets it: a page served from an origin that
// listen.websocket.allowedOrigins does not list cannot open a session (the upgrade is
// refused, 403, counted as forbidden_origin), while the same page from the listed origin, in
// the same browser, connects. The browser, not the test, writes the Origin header.
func TestBrowserPageFromAnotherOriginIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium and a gateway process and needs Kafka; not in -short")
	}
	e := newEnv(t)
	cfg := Config{URL: "ws://" + e.lb.Addr() + wsPath, Token: e.token("mallory")}
	allowed, other := Serve(t, cfg), Serve(t, cfg) // two ports: two origins
	gw := e.startGateways(allowed.Origin(), "gw-0")[0]
	e.lb.Add(gw.WebSocketAddr)
	b := Launch(t)

	refused := b.Open(other.URL)
	// The SDK's first connect fails at once on a refused upgrade (nothing to resume yet).
	s := refused.WaitState(t, connectTimeout, "the refused page's failed connect", func(s State) bool { return s.Phase == "failed" })
	if len(s.Connects) > 0 || len(s.Errors) != 1 || !strings.Contains(s.Errors[0], "TransportError") {
		t.Fatalf("the page of %s, not an allowed origin: %+v; want no session and one TransportError", other.Origin(), s)
	}
	if n, err := gw.Metric("tcpgw_websocket_upgrades_total", "result", "forbidden_origin"); err != nil || n != 1 {
		t.Fatalf("tcpgw_websocket_upgrades_total{result=forbidden_origin} = %v (%v), want 1", n, err)
	}

	ok := b.Open(allowed.URL)
	ok.WaitState(t, connectTimeout, "the allowed page's handshake", func(s State) bool { return len(s.Connects) == 1 })
	if s, err := ok.State(); err != nil || s.Connects[0].ServerID != gw.ID {
		t.Fatalf("the allowed page: %+v, %v", s, err)
	}
}
