package auth

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

const (
	testIssuer   = "https://auth.example.com"
	testAudience = "tcpgateway"
)

// jwtFixture is a verifier configured with both an HS256 secret and an RS256 key.
type jwtFixture struct {
	secret  []byte
	pubPEM  []byte
	verify  Verifier
	nowUnix int64
}

func newJWTFixture(t testing.TB) *jwtFixture {
	t.Helper()
	f := &jwtFixture{secret: randomSecret(t), pubPEM: publicPEM(t, rsaKeys()[0])}
	dir := t.TempDir()
	v, err := NewJWT(config.JWTAuth{
		HS256SecretFile:    writeFile(t, filepath.Join(dir, "hs256"), f.secret),
		RS256PublicKeyFile: writeFile(t, filepath.Join(dir, "rs256.pem"), f.pubPEM),
		Issuer:             testIssuer,
		Audience:           testAudience,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.verify = v
	f.nowUnix = time.Now().Unix()
	return f
}

// claims returns valid claims for the fixture, with overrides applied; a nil override value
// deletes the claim.
func (f *jwtFixture) claims(overrides jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":    "user-1",
		"groups": []string{"beta", "eu"},
		"iss":    testIssuer,
		"aud":    testAudience,
		"iat":    f.nowUnix,
		"exp":    f.nowUnix + 3600,
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func TestJWTVerify(t *testing.T) {
	f := newJWTFixture(t)
	now := f.nowUnix
	otherSecret := randomSecret(t)
	priv, otherPriv := rsaKeys()[0], rsaKeys()[1]
	none := func(c jwt.MapClaims) string {
		return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, c)
	}

	tests := []struct {
		name   string
		token  string
		want   Identity
		reason string
	}{
		{"valid HS256", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(nil)),
			Identity{UserID: "user-1", Groups: []string{"beta", "eu"}}, ""},
		{"valid RS256", sign(t, jwt.SigningMethodRS256, priv, f.claims(nil)),
			Identity{UserID: "user-1", Groups: []string{"beta", "eu"}}, ""},
		{"no groups claim", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"groups": nil})),
			Identity{UserID: "user-1"}, ""},
		{"audience list containing ours", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"aud": []string{"other", testAudience}})),
			Identity{UserID: "user-1", Groups: []string{"beta", "eu"}}, ""},
		{"expired within leeway", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"exp": now - 10})),
			Identity{UserID: "user-1", Groups: []string{"beta", "eu"}}, ""},
		{"empty token", "", Identity{}, ReasonMissingToken},
		{"expired", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"exp": now - 3600})), Identity{}, ReasonExpiredToken},
		{"expired RS256", sign(t, jwt.SigningMethodRS256, priv, f.claims(jwt.MapClaims{"exp": now - 3600})), Identity{}, ReasonExpiredToken},
		{"no exp", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"exp": nil})), Identity{}, ReasonInvalidToken},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"nbf": now + 3600})), Identity{}, ReasonInvalidToken},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"iat": now + 3600})), Identity{}, ReasonInvalidToken},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"iss": "https://evil"})), Identity{}, ReasonInvalidToken},
		{"no issuer", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"iss": nil})), Identity{}, ReasonInvalidToken},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"aud": "other"})), Identity{}, ReasonInvalidToken},
		{"wrong HS256 secret", sign(t, jwt.SigningMethodHS256, otherSecret, f.claims(nil)), Identity{}, ReasonInvalidToken},
		{"wrong RSA key", sign(t, jwt.SigningMethodRS256, otherPriv, f.claims(nil)), Identity{}, ReasonInvalidToken},
		{"expired and wrong signature", sign(t, jwt.SigningMethodHS256, otherSecret, f.claims(jwt.MapClaims{"exp": now - 3600})), Identity{}, ReasonInvalidToken},
		{"alg none", none(f.claims(nil)), Identity{}, ReasonInvalidToken},
		{"alg confusion: HS256 keyed with the RSA public key", sign(t, jwt.SigningMethodHS256, f.pubPEM, f.claims(nil)), Identity{}, ReasonInvalidToken},
		{"alg not allowed: RS384", sign(t, jwt.SigningMethodRS384, priv, f.claims(nil)), Identity{}, ReasonInvalidToken},
		{"alg not allowed: HS512", sign(t, jwt.SigningMethodHS512, f.secret, f.claims(nil)), Identity{}, ReasonInvalidToken},
		{"malformed", "not.a.jwt", Identity{}, ReasonInvalidToken},
		{"missing user claim", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"sub": nil})), Identity{}, ReasonInvalidToken},
		{"empty user claim", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"sub": ""})), Identity{}, ReasonInvalidToken},
		{"groups not an array", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"groups": "beta"})), Identity{}, ReasonInvalidToken},
		{"groups with a number", sign(t, jwt.SigningMethodHS256, f.secret, f.claims(jwt.MapClaims{"groups": []any{"beta", 7}})), Identity{}, ReasonInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.verify.Verify(context.Background(), Request{Token: tt.token, DeviceID: "d", ClientAddress: "127.0.0.1:1"})
			wantReason(t, err, tt.reason)
			if err == nil {
				if got.ExpiresAt.IsZero() {
					t.Error("no ExpiresAt from a token with exp")
				}
				got.ExpiresAt = time.Time{} // checked exactly in TestJWTCustomClaimsAndNoIssuerCheck
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("identity = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestJWTAlgConfusionRSAOnly is the classic attack: the verifier only has an RSA public key
// (public, so the attacker has it too) and the attacker signs an HS256 token using the PEM
// bytes as the HMAC secret.
func TestJWTAlgConfusionRSAOnly(t *testing.T) {
	pubPEM := publicPEM(t, rsaKeys()[0])
	v, err := NewJWT(anyIssuer(config.JWTAuth{RS256PublicKeyFile: writeFile(t, tempPath(t, "rs.pem"), pubPEM)}))
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "attacker", "exp": time.Now().Add(time.Hour).Unix()}
	for name, key := range map[string][]byte{
		"pem bytes":           pubPEM,
		"pem without newline": []byte(strings.TrimSpace(string(pubPEM))),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), Request{Token: sign(t, jwt.SigningMethodHS256, key, claims)})
			wantReason(t, err, ReasonInvalidToken)
		})
	}
	// The same claims properly signed do pass, so the rejection above is about the alg.
	if _, err := v.Verify(context.Background(), Request{Token: sign(t, jwt.SigningMethodRS256, rsaKeys()[0], claims)}); err != nil {
		t.Fatalf("RS256 token rejected: %v", err)
	}
}

func TestJWTCustomClaimsAndNoIssuerCheck(t *testing.T) {
	secret := randomSecret(t)
	v, err := NewJWT(config.JWTAuth{
		HS256SecretFile:   writeFile(t, tempPath(t, "hs"), secret),
		UserClaim:         "uid",
		GroupsClaim:       "roles",
		SkipIssuerCheck:   true,
		SkipAudienceCheck: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Minute).Truncate(time.Second)
	tok := sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{
		"uid": "u-9", "roles": []string{"admin"}, "sub": "ignored", "iss": "anyone",
		"exp": exp.Unix(),
	})
	got, err := v.Verify(context.Background(), Request{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Identity{UserID: "u-9", Groups: []string{"admin"}, ExpiresAt: exp}); !got.ExpiresAt.Equal(exp) ||
		!reflect.DeepEqual(got.Groups, want.Groups) || got.UserID != want.UserID {
		t.Errorf("identity = %+v, want %+v", got, want)
	}
}

func TestNewJWTRejectsBadKeys(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(t *testing.T) config.JWTAuth
		want string
	}{
		{"no key file", func(t *testing.T) config.JWTAuth { return config.JWTAuth{} }, "needs hs256SecretFile, rs256PublicKeyFile or keySetFile"},
		{"missing secret file", func(t *testing.T) config.JWTAuth {
			return anyIssuer(config.JWTAuth{HS256SecretFile: tempPath(t, "absent")})
		}, "hs256SecretFile"},
		{"short secret", func(t *testing.T) config.JWTAuth {
			return anyIssuer(config.JWTAuth{HS256SecretFile: writeFile(t, tempPath(t, "hs"), []byte("password\n"))})
		}, "need at least 32"},
		{"public key not PEM", func(t *testing.T) config.JWTAuth {
			return anyIssuer(config.JWTAuth{RS256PublicKeyFile: writeFile(t, tempPath(t, "rs"), []byte("ssh-rsa AAAA"))})
		}, "rs256PublicKeyFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewJWT(tt.cfg(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

// TestJWTSecretRotation rewrites the secret file in place, as an editor or a non-Kubernetes
// deployment would.
func TestJWTSecretRotation(t *testing.T) {
	clock := newFakeClock()
	path := tempPath(t, "hs256")
	oldSecret, newSecret := randomSecret(t), randomSecret(t)
	writeFile(t, path, oldSecret)
	v, err := newJWT(anyIssuer(config.JWTAuth{HS256SecretFile: path}), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "u", "exp": clock.Now().Add(time.Hour).Unix()}
	oldTok := sign(t, jwt.SigningMethodHS256, oldSecret, claims)
	newTok := sign(t, jwt.SigningMethodHS256, newSecret, claims)
	check := func(step, tok, reason string) {
		t.Helper()
		_, err := v.Verify(context.Background(), Request{Token: tok})
		if got := ReasonOf(err); got != reason {
			t.Fatalf("%s: reason = %q (err %v), want %q", step, got, err, reason)
		}
	}

	check("before rotation, old secret", oldTok, "")
	check("before rotation, new secret", newTok, ReasonInvalidToken)

	writeFile(t, path, newSecret)
	bumpModTime(t, path, time.Minute)
	check("within the check interval the cached secret still serves", oldTok, "")

	clock.Advance(keyCheckInterval)
	check("after rotation, new secret", newTok, "")
	check("after rotation, old secret", oldTok, ReasonInvalidToken)

	// A broken rewrite keeps the last good secret rather than locking everyone out.
	writeFile(t, path, []byte("short"))
	bumpModTime(t, path, 2*time.Minute)
	clock.Advance(keyCheckInterval)
	check("after a bad rewrite, last good secret", newTok, "")

	// And a later good rewrite is still picked up.
	writeFile(t, path, oldSecret)
	bumpModTime(t, path, 3*time.Minute)
	clock.Advance(keyCheckInterval)
	check("after recovery, rewritten secret", oldTok, "")
}

// TestJWTPublicKeyRotationKubernetesStyle rotates the key the way the kubelet updates a Secret
// volume: the file is a symlink through ..data to a timestamped directory, and rotation swaps
// the ..data symlink atomically. The new file has the same size and modification time as the
// old one, so only its identity (inode) shows the change.
func TestJWTPublicKeyRotationKubernetesStyle(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	oldKey, newKey := rsaKeys()[0], rsaKeys()[1]
	mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
	writeVersion := func(version string, k []byte) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, version), 0o700); err != nil {
			t.Fatal(err)
		}
		p := writeFile(t, filepath.Join(dir, version, "key.pem"), k)
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	oldPEM, newPEM := publicPEM(t, oldKey), publicPEM(t, newKey)
	if len(oldPEM) != len(newPEM) {
		t.Fatalf("test premise: PEM sizes differ (%d vs %d)", len(oldPEM), len(newPEM))
	}
	writeVersion("..v1", oldPEM)
	mustSymlink(t, "..v1", filepath.Join(dir, "..data"))
	mustSymlink(t, filepath.Join("..data", "key.pem"), filepath.Join(dir, "key.pem"))

	v, err := newJWT(anyIssuer(config.JWTAuth{RS256PublicKeyFile: filepath.Join(dir, "key.pem")}), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "u", "exp": clock.Now().Add(time.Hour).Unix()}
	oldTok := sign(t, jwt.SigningMethodRS256, oldKey, claims)
	newTok := sign(t, jwt.SigningMethodRS256, newKey, claims)
	verify := func(tok string) error {
		_, err := v.Verify(context.Background(), Request{Token: tok})
		return err
	}
	if err := verify(oldTok); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}

	writeVersion("..v2", newPEM)
	mustSymlink(t, "..v2", filepath.Join(dir, "..data_tmp"))
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..v1")); err != nil {
		t.Fatal(err)
	}
	clock.Advance(keyCheckInterval)

	if err := verify(newTok); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	wantReason(t, verify(oldTok), ReasonInvalidToken)
}

// TestJWTConcurrentVerifyDuringRotation runs verifications from several goroutines while the
// key changes, for the race detector.
func TestJWTConcurrentVerifyDuringRotation(t *testing.T) {
	clock := newFakeClock()
	path := tempPath(t, "hs256")
	secret := randomSecret(t)
	writeFile(t, path, secret)
	v, err := newJWT(anyIssuer(config.JWTAuth{HS256SecretFile: path}), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u", "exp": clock.Now().Add(time.Hour).Unix()})
	done := make(chan error)
	for range 4 {
		go func() {
			var firstErr error
			for range 200 {
				if _, err := v.Verify(context.Background(), Request{Token: tok}); err != nil && firstErr == nil {
					firstErr = err
				}
			}
			done <- firstErr
		}()
	}
	for i := range 20 {
		writeFile(t, path, secret) // same content: the key never becomes invalid
		bumpModTime(t, path, time.Duration(i+1)*time.Minute)
		clock.Advance(keyCheckInterval)
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Errorf("verify during rotation: %v", err)
		}
	}
}

func bumpModTime(t *testing.T, path string, d time.Duration) {
	t.Helper()
	at := time.Now().Add(d)
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestLocal: the JWT verifier does no I/O (the gateway calls it without a deadline); the
// webhook does (it must be given the handshake's deadline).
func TestLocal(t *testing.T) {
	if f := newJWTFixture(t); !Local(f.verify) {
		t.Error("the JWT verifier is not Local")
	}
	w, err := NewWebhook(config.WebhookAuth{URL: "http://127.0.0.1:1/"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if Local(w) {
		t.Error("the webhook verifier is Local")
	}
}
