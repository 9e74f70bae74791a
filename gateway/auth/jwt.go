package auth

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// minHS256SecretBytes: RFC 7518 §3.2 requires an HS256 key of at least the hash size.
const minHS256SecretBytes = 32

type jwtVerifier struct {
	userClaim   string
	groupsClaim string
	parser      *jwt.Parser
	// Either may be nil; the parser only accepts the algs whose key is configured.
	hs256 *keyFile[[]byte]
	rs256 *keyFile[*rsa.PublicKey]
}

// NewJWT verifies HS256 and RS256 tokens with the key files named in cfg (at least one). Zero
// fields in cfg take config's defaults. Tokens must carry exp; nbf and iat are checked when
// present, all with cfg.Leeway; iss and aud are checked when cfg sets them.
func NewJWT(cfg config.JWTAuth) (Verifier, error) {
	return newJWT(cfg, time.Now)
}

func newJWT(cfg config.JWTAuth, now func() time.Time) (*jwtVerifier, error) {
	cfg.Default()
	if cfg.HS256SecretFile == "" && cfg.RS256PublicKeyFile == "" {
		return nil, errors.New("auth: jwt needs hs256SecretFile or rs256PublicKeyFile")
	}
	v := &jwtVerifier{userClaim: cfg.UserClaim, groupsClaim: cfg.GroupsClaim}
	var methods []string
	if cfg.HS256SecretFile != "" {
		f, err := newKeyFile(cfg.HS256SecretFile, parseHS256Secret, now)
		if err != nil {
			return nil, fmt.Errorf("auth: hs256SecretFile: %w", err)
		}
		v.hs256 = f
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.RS256PublicKeyFile != "" {
		f, err := newKeyFile(cfg.RS256PublicKeyFile, jwt.ParseRSAPublicKeyFromPEM, now)
		if err != nil {
			return nil, fmt.Errorf("auth: rs256PublicKeyFile: %w", err)
		}
		v.rs256 = f
		methods = append(methods, jwt.SigningMethodRS256.Alg())
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway.Duration),
		jwt.WithTimeFunc(now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// parseHS256Secret takes the file's bytes as they are: the secret is raw bytes, so a trailing
// newline is part of it.
func parseHS256Secret(b []byte) ([]byte, error) {
	if len(b) < minHS256SecretBytes {
		return nil, fmt.Errorf("HS256 secret is %d bytes, need at least %d (RFC 7518 §3.2)", len(b), minHS256SecretBytes)
	}
	return b, nil
}

// Verify checks the token's signature and claims and extracts the identity.
func (v *jwtVerifier) Verify(_ context.Context, req Request) (Identity, error) {
	if req.Token == "" {
		return Identity{}, fail(ReasonMissingToken, "handshake has no token")
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(req.Token, claims, v.keyFor); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Identity{}, &Error{Reason: ReasonExpiredToken, Err: err}
		}
		return Identity{}, &Error{Reason: ReasonInvalidToken, Err: err}
	}
	user, ok := claims[v.userClaim].(string)
	if !ok || user == "" {
		return Identity{}, fail(ReasonInvalidToken, "claim %q must be a non-empty string", v.userClaim)
	}
	groups, err := stringList(claims[v.groupsClaim])
	if err != nil {
		return Identity{}, fail(ReasonInvalidToken, "claim %q: %v", v.groupsClaim, err)
	}
	return Identity{UserID: user, Groups: groups}, nil
}

// keyFor picks the key by the token's alg and by nothing else. Each alg only ever gets its
// own kind of key, so an HS256 token can never be checked against the RSA public key's bytes
// used as an HMAC secret (the alg-confusion attack: the public key is public, so anyone could
// sign such a token).
func (v *jwtVerifier) keyFor(t *jwt.Token) (any, error) {
	switch t.Method.Alg() {
	case jwt.SigningMethodHS256.Alg():
		if v.hs256 != nil {
			return v.hs256.get(), nil
		}
	case jwt.SigningMethodRS256.Alg():
		if v.rs256 != nil {
			return v.rs256.get(), nil
		}
	}
	return nil, fmt.Errorf("no key configured for alg %q", t.Method.Alg())
}

// stringList reads a groups claim: absent or null is no groups, otherwise it must be a JSON
// array of strings.
func stringList(claim any) ([]string, error) {
	if claim == nil {
		return nil, nil
	}
	items, ok := claim.([]any)
	if !ok {
		return nil, fmt.Errorf("must be an array of strings, got %T", claim)
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		s, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("item %d must be a string, got %T", i, item)
		}
		out = append(out, s)
	}
	return out, nil
}
