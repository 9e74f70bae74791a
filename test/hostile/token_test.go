package hostile

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// Finding 4, "token lifecycle". These run against the gateway process.

// shortTokens: REFRESH_REQUEST 1s before exp, close 1s after it; the handshake timeout is the
// first deadline check after a handshake, so it is short too.
func shortTokens(c *config.Config) {
	c.Auth.RefreshLead = config.Duration{Duration: time.Second}
	c.Auth.RefreshGrace = config.Duration{Duration: time.Second}
	c.Limits.HandshakeTimeout = config.Duration{Duration: 500 * time.Millisecond}
}

// A session used to live on after its token's exp for as long as its connection did: a
// revoked user (whose tokens stop being issued) kept receiving pushes. Now, without a
// REFRESH, it is closed with a fatal ERROR TOKEN_EXPIRED after the grace.
func TestSessionDoesNotOutliveItsToken(t *testing.T) {
	g := Start(t, Options{Configure: shortTokens})
	exp := time.Now().Add(3 * time.Second).Truncate(time.Second)
	c := g.Dial()
	ack := c.Handshake(g.SignToken(jwt.MapClaims{"sub": "mallory", "iss": Issuer, "aud": Audience, "exp": exp.Unix()}), nil)
	if ack.TokenExpiresAtMs != exp.UnixMilli() {
		t.Fatalf("token_expires_at_ms = %d, want %d", ack.TokenExpiresAtMs, exp.UnixMilli())
	}
	if f := c.Read(); f.GetRefreshRequest() == nil {
		t.Fatalf("got %s, want REFRESH_REQUEST", describe(f))
	}
	// The client ignores it and keeps the connection busy: activity does not extend a token.
	c.Send(&pb.Frame{Seq: 1, Body: &pb.Frame_Ping{Ping: &pb.Ping{}}})
	if f := c.Read(); f.GetPong() == nil {
		t.Fatalf("got %s, want PONG", describe(f))
	}
	e := c.ExpectError(pb.ErrorCode_ERROR_CODE_TOKEN_EXPIRED)
	if !e.Fatal {
		t.Error("ERROR TOKEN_EXPIRED is not marked fatal")
	}
	if now := time.Now(); now.Before(exp.Add(time.Second)) {
		t.Errorf("closed %v before exp + grace", exp.Add(time.Second).Sub(now))
	}
	c.ExpectClosed()
	wait.For(t, 5*time.Second, "the close counted", func() bool {
		return g.Metric("tcpgw_token_refreshes_total", "result", "expired") == 1 &&
			g.Metric("tcpgw_closes_total", "reason", "token_expired") == 1
	})
}

// A client holding alice's session and a valid token of bob cannot make the session bob's
// (nor keep alice's alive with bob's token): REFRESH_ACK UNAUTHENTICATED, not fatal, and the
// session is still alice's.
func TestRefreshCannotSwitchUser(t *testing.T) {
	g := Start(t, Options{})
	c := g.Dial()
	c.Handshake(g.Token("alice"), nil)
	c.Send(&pb.Frame{Seq: 1, Body: &pb.Frame_Refresh{Refresh: &pb.Refresh{Token: g.Token("bob")}}})
	f := c.Read()
	if a := f.GetRefreshAck(); a == nil || f.Seq != 1 || a.Code != pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED {
		t.Fatalf("got %s, want REFRESH_ACK UNAUTHENTICATED", describe(f))
	}
	c.Send(&pb.Frame{Seq: 2, Body: &pb.Frame_Request{Request: &pb.Request{Service: "echo", Method: "whoami", Payload: []byte("x")}}})
	f = c.Read()
	if body := string(f.GetResponse().GetPayload()); !strings.HasPrefix(body, "alice ") {
		t.Fatalf("after the refused refresh the request ran as %q, want alice", body)
	}
	if n := g.Metric("tcpgw_token_refreshes_total", "result", "other_user"); n != 1 {
		t.Errorf("tcpgw_token_refreshes_total{result=other_user} = %v, want 1", n)
	}
}

// Key rotation used to be a hard cut: replacing the key file refused every token signed with
// the old key at once. A key set keeps old and new valid while both are in it; a removed key's
// tokens are refused as unknown_key, a reason of its own in the ERROR and the metric.
func TestKeyRotationWithOverlap(t *testing.T) {
	dir := t.TempDir()
	setFile := filepath.Join(dir, "jwks.json")
	oldKey, newKey := []byte("hostile-rotation-old-key-0123456789abcdef"), []byte("hostile-rotation-new-key-0123456789abcdef")
	writeSet := func(keys map[string][]byte) {
		t.Helper()
		var doc struct {
			Keys []map[string]string `json:"keys"`
		}
		for kid, k := range keys {
			doc.Keys = append(doc.Keys, map[string]string{"kty": "oct", "kid": kid, "k": base64.RawURLEncoding.EncodeToString(k)})
		}
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		// Replace the file atomically, as the kubelet swaps a Secret volume's contents.
		tmp := setFile + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, setFile); err != nil {
			t.Fatal(err)
		}
	}
	writeSet(map[string][]byte{"old": oldKey})
	g := Start(t, Options{Configure: func(c *config.Config) { c.Auth.JWT.KeySetFile = setFile }})
	token := func(kid string, key []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "alice", "iss": Issuer, "aud": Audience, "exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	oldTok, newTok := token("old", oldKey), token("new", newKey)
	// handshake reports "" when accepted, else the UNAUTHENTICATED reason.
	handshake := func(tok string) string {
		c := g.Dial()
		defer c.Close()
		c.Send(HandshakeFrame(tok))
		f := c.Read()
		if f.GetHandshakeAck() != nil {
			return ""
		}
		if e := f.GetError(); e != nil && e.Code == pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED {
			return e.Message
		}
		t.Fatalf("handshake answered with %s", describe(f))
		return ""
	}
	if r := handshake(oldTok); r != "" {
		t.Fatalf("old key before rotation: %s", r)
	}
	if r := handshake(newTok); r != "unknown_key" {
		t.Fatalf("new key before it is in the set: %q, want unknown_key", r)
	}

	writeSet(map[string][]byte{"old": oldKey, "new": newKey})
	wait.For(t, 10*time.Second, "the gateway to load the new key", func() bool { return handshake(newTok) == "" })
	if r := handshake(oldTok); r != "" {
		t.Fatalf("old key during the overlap: %s", r)
	}

	writeSet(map[string][]byte{"new": newKey})
	wait.For(t, 10*time.Second, "the gateway to drop the old key", func() bool { return handshake(oldTok) == "unknown_key" })
	if r := handshake(newTok); r != "" {
		t.Fatalf("new key after the window: %s", r)
	}
	if n := g.Metric("tcpgw_handshakes_total", "result", "unknown_key"); n < 2 {
		t.Errorf("tcpgw_handshakes_total{result=unknown_key} = %v, want at least 2", n)
	}
}
