package auth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

func octJWK(kid string, secret []byte) map[string]string {
	return map[string]string{"kty": "oct", "kid": kid, "alg": "HS256", "use": "sig", "k": base64.RawURLEncoding.EncodeToString(secret)}
}

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
}

func jwks(t testing.TB, keys ...map[string]string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signKid(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestJWTKeySetRotationWithOverlap rotates an HS256 key the way an operator should: the set
// holds old and new keys during the window, so tokens signed with either are accepted; once
// the old key is removed its tokens are refused as unknown_key (not as a bad signature, so
// the cause is visible in the handshake metric).
func TestJWTKeySetRotationWithOverlap(t *testing.T) {
	clock := newFakeClock()
	path := tempPath(t, "jwks.json")
	oldSecret, newSecret := randomSecret(t), randomSecret(t)
	writeFile(t, path, jwks(t, octJWK("2026-11", oldSecret)))
	v, err := newJWT(config.JWTAuth{KeySetFile: path, Issuer: testIssuer, Audience: testAudience}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "u", "iss": testIssuer, "aud": testAudience, "exp": clock.Now().Add(time.Hour).Unix()}
	oldTok := signKid(t, jwt.SigningMethodHS256, oldSecret, "2026-11", claims)
	newTok := signKid(t, jwt.SigningMethodHS256, newSecret, "2026-12", claims)
	forged := signKid(t, jwt.SigningMethodHS256, newSecret, "2026-11", claims) // new secret, old kid
	check := func(step, tok, reason string) {
		t.Helper()
		_, err := v.Verify(context.Background(), Request{Token: tok})
		if got := ReasonOf(err); got != reason {
			t.Fatalf("%s: reason = %q (err %v), want %q", step, got, err, reason)
		}
	}

	check("before rotation, old key", oldTok, "")
	check("before rotation, new kid is unknown", newTok, ReasonUnknownKey)

	writeFile(t, path, jwks(t, octJWK("2026-11", oldSecret), octJWK("2026-12", newSecret)))
	bumpModTime(t, path, time.Minute)
	clock.Advance(keyCheckInterval)
	check("overlap, old key", oldTok, "")
	check("overlap, new key", newTok, "")
	check("overlap, a kid selects its own key only", forged, ReasonInvalidToken)

	writeFile(t, path, jwks(t, octJWK("2026-12", newSecret)))
	bumpModTime(t, path, 2*time.Minute)
	clock.Advance(keyCheckInterval)
	check("after the window, new key", newTok, "")
	check("after the window, old key removed", oldTok, ReasonUnknownKey)

	// A broken rewrite keeps the last good set.
	writeFile(t, path, []byte(`{"keys":[`))
	bumpModTime(t, path, 3*time.Minute)
	clock.Advance(keyCheckInterval)
	check("after a bad rewrite, last good set", newTok, "")
}

// TestJWTKeySetSelection covers how a token finds its key among single-key files and a set.
func TestJWTKeySetSelection(t *testing.T) {
	single, setHS := randomSecret(t), randomSecret(t)
	priv, setPriv := rsaKeys()[0], rsaKeys()[1]
	dir := t.TempDir()
	v, err := NewJWT(config.JWTAuth{
		HS256SecretFile: writeFile(t, dir+"/hs", single),
		KeySetFile:      writeFile(t, dir+"/jwks.json", jwks(t, octJWK("hs-1", setHS), rsaJWK("rs-1", &setPriv.PublicKey))),
		Issuer:          testIssuer,
		Audience:        testAudience,
	})
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "u", "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()}
	pubPEM := publicPEM(t, setPriv)
	tests := []struct {
		name, token, reason string
	}{
		{"kid names a set HS256 key", signKid(t, jwt.SigningMethodHS256, setHS, "hs-1", claims), ""},
		{"kid names a set RS256 key", signKid(t, jwt.SigningMethodRS256, setPriv, "rs-1", claims), ""},
		{"no kid: the single file's key", signKid(t, jwt.SigningMethodHS256, single, "", claims), ""},
		{"no kid: every set key of the alg is tried", signKid(t, jwt.SigningMethodHS256, setHS, "", claims), ""},
		{"no kid: RS256 set key", signKid(t, jwt.SigningMethodRS256, setPriv, "", claims), ""},
		{"no kid, no key of that alg signs it", signKid(t, jwt.SigningMethodRS256, priv, "", claims), ReasonInvalidToken},
		{"kid never checks the single file", signKid(t, jwt.SigningMethodHS256, single, "hs-1", claims), ReasonInvalidToken},
		{"unknown kid", signKid(t, jwt.SigningMethodHS256, setHS, "hs-0", claims), ReasonUnknownKey},
		{"kid of an RSA key on an HS256 token", signKid(t, jwt.SigningMethodHS256, setHS, "rs-1", claims), ReasonInvalidToken},
		{"alg confusion through the set: HS256 keyed with the RSA key's PEM", signKid(t, jwt.SigningMethodHS256, pubPEM, "", claims), ReasonInvalidToken},
		{"alg confusion with the RSA key's kid", signKid(t, jwt.SigningMethodHS256, pubPEM, "rs-1", claims), ReasonInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), Request{Token: tt.token})
			wantReason(t, err, tt.reason)
		})
	}

	t.Run("kid that is not a string", func(t *testing.T) {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		tok.Header["kid"] = 7
		s, err := tok.SignedString(setHS)
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), Request{Token: s})
		wantReason(t, err, ReasonInvalidToken)
	})
}

func TestParseKeySetRejects(t *testing.T) {
	secret := make([]byte, 32)
	short := map[string]string{"kty": "oct", "kid": "a", "k": base64.RawURLEncoding.EncodeToString(secret[:31])}
	pub := &rsaKeys()[0].PublicKey
	small := &rsa.PublicKey{N: new(big.Int).Rsh(pub.N, 1100), E: pub.E}
	many := make([]map[string]string, MaxKeySetKeys+1)
	for i := range many {
		many[i] = octJWK(string(rune('a'+i)), secret)
	}
	tests := []struct {
		name string
		doc  []byte
		want string
	}{
		{"not JSON", []byte("hs256 secret"), "not a JSON Web Key Set"},
		{"no keys", []byte(`{"keys":[]}`), "has no keys"},
		{"too many keys", jwks(t, many...), "at most 16"},
		{"no kid", jwks(t, map[string]string{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(secret)}), "kid is required"},
		{"duplicate kid", jwks(t, octJWK("a", secret), octJWK("a", secret)), `kid "a" appears twice`},
		{"short secret", jwks(t, short), "need at least 32"},
		{"encryption key", jwks(t, map[string]string{"kty": "oct", "kid": "a", "use": "enc", "k": "AAAA"}), `use "enc"`},
		{"oct with RS256", jwks(t, map[string]string{"kty": "oct", "kid": "a", "alg": "RS256", "k": "AAAA"}), "oct keys verify HS256 only"},
		{"RSA with HS256", jwks(t, map[string]string{"kty": "RSA", "kid": "a", "alg": "HS256"}), "RSA keys verify RS256 only"},
		{"small RSA", jwks(t, rsaJWK("a", small)), "need at least 2048"},
		{"even exponent", jwks(t, map[string]string{"kty": "RSA", "kid": "a", "n": rsaJWK("a", pub)["n"], "e": "Ag"}), "odd exponent"},
		{"EC key", jwks(t, map[string]string{"kty": "EC", "kid": "a"}), `kty "EC" is not supported`},
		{"bad base64", jwks(t, map[string]string{"kty": "oct", "kid": "a", "k": "!!"}), "k: illegal base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseKeySet(tt.doc)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

// TestNewJWTRequiresIssuerAndAudience: a verifier that would accept tokens minted for any
// issuer or audience is only built when the config says so by name.
func TestNewJWTRequiresIssuerAndAudience(t *testing.T) {
	key := writeFile(t, tempPath(t, "hs"), randomSecret(t))
	tests := []struct {
		name string
		cfg  config.JWTAuth
		want string
	}{
		{"neither", config.JWTAuth{HS256SecretFile: key}, "issuer or skipIssuerCheck"},
		{"no audience", config.JWTAuth{HS256SecretFile: key, Issuer: testIssuer}, "audience or skipAudienceCheck"},
		{"issuer and skip", config.JWTAuth{HS256SecretFile: key, Issuer: testIssuer, SkipIssuerCheck: true, Audience: testAudience}, "issuer or skipIssuerCheck"},
		{"both", config.JWTAuth{HS256SecretFile: key, Issuer: testIssuer, Audience: testAudience}, ""},
		{"both skipped", config.JWTAuth{HS256SecretFile: key, SkipIssuerCheck: true, SkipAudienceCheck: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewJWT(tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}
