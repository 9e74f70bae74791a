package server_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// shortTokens: REFRESH_REQUEST 1s before exp, close 1s after it; the handshake timeout is the
// first deadline check after the handshake, so it is short too.
func shortTokens(c *config.Config) {
	c.Auth.RefreshLead = config.Duration{Duration: time.Second}
	c.Auth.RefreshGrace = config.Duration{Duration: time.Second}
	c.Limits.HandshakeTimeout = config.Duration{Duration: 500 * time.Millisecond}
}

// tokenUntil mints a token for user that expires at exp (JWT exp has one-second precision).
func (h *harness) tokenUntil(user string, exp time.Time) string {
	h.t.Helper()
	claims := jwt.MapClaims{"sub": user, "iss": testIssuer, "aud": testAudience, "exp": exp.Unix()}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(h.secret)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// TestExpiredTokenClosesSessionAfterGrace: before, a session lived on past its token's exp
// for as long as the connection did. Now the gateway asks for a refresh ahead of exp and,
// without one, closes the session with a fatal ERROR TOKEN_EXPIRED at exp + grace.
func TestExpiredTokenClosesSessionAfterGrace(t *testing.T) {
	h := start(t, nil, shortTokens)
	exp := time.Now().Add(3 * time.Second).Truncate(time.Second)
	r := h.raw()
	ack := r.handshake(h.tokenUntil("alice", exp))
	if ack.TokenExpiresAtMs != exp.UnixMilli() {
		t.Fatalf("HandshakeAck.token_expires_at_ms = %d, want %d", ack.TokenExpiresAtMs, exp.UnixMilli())
	}
	req := r.read().GetRefreshRequest()
	if req == nil || req.TokenExpiresAtMs != exp.UnixMilli() || req.DeadlineMs != exp.Add(time.Second).UnixMilli() {
		t.Fatalf("got %v, want REFRESH_REQUEST for exp %d with deadline exp+1s", req, exp.UnixMilli())
	}
	f := r.read()
	if e := f.GetError(); e == nil || e.Code != pb.ErrorCode_ERROR_CODE_TOKEN_EXPIRED || !e.Fatal {
		t.Fatalf("got %v, want a fatal ERROR TOKEN_EXPIRED", f)
	}
	if now := time.Now().UnixMilli(); now < req.DeadlineMs {
		t.Errorf("closed %dms before the deadline", req.DeadlineMs-now)
	}
	r.expectClosed()
	if n := counter(h.m.TokenRefreshes.WithLabelValues("expired")); n != 1 {
		t.Errorf("tcpgw_token_refreshes_total{result=expired} = %v, want 1", n)
	}
	eventually(t, "the close counted as token_expired", func() bool {
		return counter(h.m.Closes.WithLabelValues("token_expired")) == 1
	})
}

// TestRefreshExtendsSession: a REFRESH with a new token of the same user moves the session's
// expiry: the old deadline passes without a close and the next REFRESH_REQUEST is for the
// new token.
func TestRefreshExtendsSession(t *testing.T) {
	h := start(t, nil, shortTokens)
	exp := time.Now().Add(3 * time.Second).Truncate(time.Second)
	r := h.raw()
	r.handshake(h.tokenUntil("alice", exp))
	req := r.read().GetRefreshRequest()
	if req == nil {
		t.Fatal("no REFRESH_REQUEST")
	}
	newExp := exp.Add(3 * time.Second)
	r.send(&pb.Frame{Seq: 7, Body: &pb.Frame_Refresh{Refresh: &pb.Refresh{Token: h.tokenUntil("alice", newExp)}}})
	f := r.read()
	if a := f.GetRefreshAck(); a == nil || f.Seq != 7 || a.Code != pb.ErrorCode_ERROR_CODE_OK || a.TokenExpiresAtMs != newExp.UnixMilli() {
		t.Fatalf("got %v, want REFRESH_ACK OK seq 7 for exp %d", f, newExp.UnixMilli())
	}
	// The next frame comes after the old deadline (exp+1s): the new token's REFRESH_REQUEST,
	// not an ERROR.
	f = r.read()
	if req := f.GetRefreshRequest(); req == nil || req.TokenExpiresAtMs != newExp.UnixMilli() {
		t.Fatalf("got %v, want REFRESH_REQUEST for the new token", f)
	}
	if counter(h.m.TokenRefreshes.WithLabelValues("ok")) != 1 || counter(h.m.TokenRefreshes.WithLabelValues("requested")) != 2 {
		t.Errorf("refresh metrics: ok %v requested %v, want 1 and 2",
			counter(h.m.TokenRefreshes.WithLabelValues("ok")), counter(h.m.TokenRefreshes.WithLabelValues("requested")))
	}
}

// TestRefreshWithAnotherUsersTokenRefused: an attacker holding a session as alice and a
// valid token of bob cannot turn the session into bob's (nor stretch alice's with it); a
// bad token is refused the same way. Both are answered, not fatal: the session goes on.
func TestRefreshWithAnotherUsersTokenRefused(t *testing.T) {
	h := start(t, nil, nil)
	r := h.raw()
	ack := r.handshake(h.token("alice"))
	for i, tc := range []struct{ token, message, result string }{
		{h.token("bob"), "the token authenticates another user", "other_user"},
		{"not.a.token", "invalid_token", "invalid_token"},
	} {
		seq := uint64(i + 1)
		r.send(&pb.Frame{Seq: seq, Body: &pb.Frame_Refresh{Refresh: &pb.Refresh{Token: tc.token}}})
		f := r.read()
		a := f.GetRefreshAck()
		if a == nil || f.Seq != seq || a.Code != pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED || a.Message != tc.message {
			t.Fatalf("got %v, want REFRESH_ACK UNAUTHENTICATED %q", f, tc.message)
		}
		if n := counter(h.m.TokenRefreshes.WithLabelValues(tc.result)); n != 1 {
			t.Errorf("tcpgw_token_refreshes_total{result=%s} = %v, want 1", tc.result, n)
		}
	}
	r.send(&pb.Frame{Seq: 9, Body: &pb.Frame_Ping{Ping: &pb.Ping{}}})
	if f := r.read(); f.GetPong() == nil {
		t.Fatalf("after the refused refreshes got %v, want PONG", f)
	}
	// The session is still alice's: a request reaches the backend as alice.
	r.send(&pb.Frame{Seq: 10, Body: &pb.Frame_Request{Request: &pb.Request{Service: "echo", Method: "m"}}})
	if f := r.read(); f.GetResponse().GetHeaders()["user"] != ack.UserId || ack.UserId != "alice" {
		t.Fatalf("after the refused refreshes the request ran as %q, want alice", f.GetResponse().GetHeaders()["user"])
	}
}

// TestSDKRefreshesThroughTokenSource: the Go SDK answers every REFRESH_REQUEST with a token
// from its source, so a session outlives several short-lived tokens on one connection.
func TestSDKRefreshesThroughTokenSource(t *testing.T) {
	h := start(t, nil, shortTokens)
	var calls atomic.Int32
	var disconnects atomic.Int32
	h.connect("alice", "", func(o *client.Options) {
		o.Token = ""
		o.TokenSource = func(context.Context) (string, error) {
			calls.Add(1)
			return h.tokenUntil("alice", time.Now().Add(2500*time.Millisecond).Truncate(time.Second)), nil
		}
		o.OnDisconnect = func(error) { disconnects.Add(1) }
	})
	eventually(t, "three refreshes on one connection", func() bool {
		return counter(h.m.TokenRefreshes.WithLabelValues("ok")) >= 3
	})
	if n := disconnects.Load(); n != 0 {
		t.Fatalf("the session was cut %d times", n)
	}
	if n := counter(h.m.TokenRefreshes.WithLabelValues("expired")); n != 0 {
		t.Fatalf("%v sessions closed as expired", n)
	}
}

// TestRefreshWithStaleTokenIsAskedAgain: a REFRESH accepted with a token already within the
// refresh lead (a token source that returned the same token) gets a new REFRESH_REQUEST at
// once. Before, the gateway asked again only at its next check of the session, which could be
// the deadline itself: the session closed with TOKEN_EXPIRED without a second request (seen by
// the conformance suite). A REFRESH with a token that expires sooner does not shorten the
// session.
func TestRefreshWithStaleTokenIsAskedAgain(t *testing.T) {
	h := start(t, nil, shortTokens)
	exp := time.Now().Add(3 * time.Second).Truncate(time.Second)
	r := h.raw()
	r.handshake(h.tokenUntil("alice", exp))
	if req := r.read().GetRefreshRequest(); req == nil {
		t.Fatal("no REFRESH_REQUEST")
	}
	for i, token := range []string{
		h.tokenUntil("alice", exp),                   // the same expiry
		h.tokenUntil("alice", exp.Add(-time.Second)), // sooner (within the verifier's leeway)
	} {
		seq := uint64(i + 1)
		r.send(&pb.Frame{Seq: seq, Body: &pb.Frame_Refresh{Refresh: &pb.Refresh{Token: token}}})
		f := r.read()
		if a := f.GetRefreshAck(); a == nil || f.Seq != seq || a.Code != pb.ErrorCode_ERROR_CODE_OK || a.TokenExpiresAtMs != exp.UnixMilli() {
			t.Fatalf("REFRESH %d: got %v, want REFRESH_ACK OK seq %d keeping exp %d", seq, f, seq, exp.UnixMilli())
		}
		f = r.read()
		if req := f.GetRefreshRequest(); req == nil || req.TokenExpiresAtMs != exp.UnixMilli() || time.Now().UnixMilli() >= req.DeadlineMs {
			t.Fatalf("REFRESH %d: got %v, want a new REFRESH_REQUEST before the deadline", seq, f)
		}
	}
	newExp := exp.Add(3 * time.Second)
	r.send(&pb.Frame{Seq: 3, Body: &pb.Frame_Refresh{Refresh: &pb.Refresh{Token: h.tokenUntil("alice", newExp)}}})
	if f := r.read(); f.GetRefreshAck().GetTokenExpiresAtMs() != newExp.UnixMilli() {
		t.Fatalf("got %v, want REFRESH_ACK OK for exp %d", f, newExp.UnixMilli())
	}
	// The old deadline passes without a close: the next frame is the new token's request.
	if f := r.read(); f.GetRefreshRequest().GetTokenExpiresAtMs() != newExp.UnixMilli() {
		t.Fatalf("got %v, want REFRESH_REQUEST for the new token", f)
	}
}
