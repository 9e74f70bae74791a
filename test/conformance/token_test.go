package conformance

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
)

// Two sessions whose tokens expire in 6 to 7 s (exp has a resolution of a second; refreshLead
// 3 s, so REFRESH_REQUEST comes at least 3 s after the token was minted, when the test has long
// given the token source its new token even on a loaded machine; refreshGrace 1 s): the one
// with a token source answers REFRESH_REQUEST with the new token and outlives the old
// deadline; the one with a fixed token stops with TOKEN_EXPIRED.
func tokenRefresh(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{Configure: func(c *config.Config) {
		c.Auth.RefreshLead = config.Duration{Duration: 3 * time.Second}
		c.Auth.RefreshGrace = config.Duration{Duration: time.Second}
	}})
	g := f.Gateways[0]
	short := func(user string) string {
		return f.SignToken(jwt.MapClaims{"sub": user, "iss": Issuer, "aud": Audience, "exp": time.Now().Add(7 * time.Second).Unix()})
	}
	mark := s.d.Mark()
	st := s.connect(t, "src", f.Dial(g), short("refresher"), func(c *wire.Command) { c.Refreshable = true; fast(c) })
	if st.Ack.TokenExpiresAtMs == 0 {
		t.Fatalf("ack without token expiry: %+v", st.Ack)
	}
	s.d.MustCall(wire.Command{Op: "set_token", Client: "src", Token: f.Token("refresher")})
	s.connect(t, "fixed", f.Dial(g), short("stuck"), fast)

	s.d.WaitEvent(mark, 15*time.Second, "the refresh's token fetch", func(e Received) bool {
		return e.Event.Event == "token_fetched" && e.Client == "src" && e.N == 2
	})
	stop := s.d.WaitEvent(mark, 15*time.Second, "the fixed-token client's stop", IsState("fixed", "stopped"))
	if c := stop.Cause; c == nil || c.Kind != wire.KindServerError || c.Code != "TOKEN_EXPIRED" {
		t.Fatalf("fixed-token client stopped with %s, want server_error TOKEN_EXPIRED", failureString(stop.Cause))
	}
	// The refreshed session is past its old token's deadline, and alive.
	s.d.MustCall(wire.Command{Op: "ping", Client: "src"})
	if e, ok := s.d.Find(mark, IsState("src", "disconnected")); ok {
		t.Fatalf("the refreshed session ended: %s", failureString(e.Cause))
	}
	if n, err := g.Metric("tcpgw_token_refreshes_total", "result", "ok"); err != nil || n != 1 {
		t.Fatalf("accepted refreshes %v (%v), want 1", n, err)
	}
}
