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
	// The parser's options again, for the fast path (jwt_compact.go): issuer and audience
	// are "" when their check is skipped.
	claimNames []string
	issuer     string
	audience   string
	leeway     time.Duration
	now        func() time.Time
	// Any may be nil (at least one is set). The single-key files serve tokens without a kid;
	// the set serves tokens with a kid (by kid) and without one (every key of the alg).
	hs256 *keyFile[*hmacKey]
	rs256 *keyFile[*rsa.PublicKey]
	set   *keyFile[keySet]
}

// NewJWT verifies HS256 and RS256 tokens with the key files named in cfg (at least one; see
// config.JWTAuth for how a token's kid selects its key). Zero fields in cfg take config's
// defaults. Tokens must carry exp; nbf and iat are checked when present, all with
// cfg.Leeway; iss and aud are required to match cfg unless cfg explicitly skips the check.
func NewJWT(cfg config.JWTAuth) (Verifier, error) {
	return newJWT(cfg, time.Now)
}

func newJWT(cfg config.JWTAuth, now func() time.Time) (*jwtVerifier, error) {
	cfg.Default()
	if cfg.HS256SecretFile == "" && cfg.RS256PublicKeyFile == "" && cfg.KeySetFile == "" {
		return nil, errors.New("auth: jwt needs hs256SecretFile, rs256PublicKeyFile or keySetFile")
	}
	// Defence in depth behind config validation: a verifier built from a config that forgot
	// the issuer or audience would accept tokens minted for other services.
	if (cfg.Issuer == "") != cfg.SkipIssuerCheck {
		return nil, errors.New("auth: jwt needs an issuer or skipIssuerCheck (exactly one)")
	}
	if (cfg.Audience == "") != cfg.SkipAudienceCheck {
		return nil, errors.New("auth: jwt needs an audience or skipAudienceCheck (exactly one)")
	}
	v := &jwtVerifier{
		userClaim: cfg.UserClaim, groupsClaim: cfg.GroupsClaim, claimNames: claimNames(cfg.UserClaim, cfg.GroupsClaim),
		issuer: cfg.Issuer, audience: cfg.Audience, leeway: cfg.Leeway.Duration, now: now,
	}
	var err error
	if cfg.HS256SecretFile != "" {
		if v.hs256, err = newKeyFile(cfg.HS256SecretFile, parseHS256Secret, now); err != nil {
			return nil, fmt.Errorf("auth: hs256SecretFile: %w", err)
		}
	}
	if cfg.RS256PublicKeyFile != "" {
		if v.rs256, err = newKeyFile(cfg.RS256PublicKeyFile, jwt.ParseRSAPublicKeyFromPEM, now); err != nil {
			return nil, fmt.Errorf("auth: rs256PublicKeyFile: %w", err)
		}
	}
	if cfg.KeySetFile != "" {
		if v.set, err = newKeyFile(cfg.KeySetFile, parseKeySet, now); err != nil {
			return nil, fmt.Errorf("auth: keySetFile: %w", err)
		}
	}
	opts := []jwt.ParserOption{
		// keyFor refuses an alg without a key of its own kind; this list keeps out the rest.
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg(), jwt.SigningMethodRS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway.Duration),
		jwt.WithTimeFunc(now),
	}
	if !cfg.SkipIssuerCheck {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if !cfg.SkipAudienceCheck {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// parseHS256Secret takes the file's bytes as they are: the secret is raw bytes, so a trailing
// newline is part of it.
func parseHS256Secret(b []byte) (*hmacKey, error) {
	if len(b) < minHS256SecretBytes {
		return nil, fmt.Errorf("HS256 secret is %d bytes, need at least %d (RFC 7518 §3.2)", len(b), minHS256SecretBytes)
	}
	return newHMACKey(b), nil
}

func (v *jwtVerifier) local() {}

// Verify checks the token's signature and claims and extracts the identity. It does no I/O
// and ignores ctx (Local). Ordinary tokens are decided by the fast path, the rest by
// golang-jwt, with the same answers (jwt_compact.go).
func (v *jwtVerifier) Verify(_ context.Context, req Request) (Identity, error) {
	if req.Token == "" {
		return Identity{}, fail(ReasonMissingToken, "handshake has no token")
	}
	if id, decided, err := v.verifyCompact(req.Token); decided {
		return id, err
	}
	return v.verifyGolangJWT(req.Token)
}

// verifyGolangJWT decides with golang-jwt's parser and MapClaims: the tokens the fast path
// leaves, and the reference its tests hold it to.
func (v *jwtVerifier) verifyGolangJWT(token string) (Identity, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, v.keyFor); err != nil {
		switch {
		case errors.Is(err, errUnknownKey):
			return Identity{}, &Error{Reason: ReasonUnknownKey, Err: err}
		case errors.Is(err, jwt.ErrTokenExpired):
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
	var expires time.Time
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		expires = exp.Time
	}
	return Identity{UserID: user, Groups: groups, ExpiresAt: expires}, nil
}

// errUnknownKey: the token names a kid that no configured key has (a key removed after its
// rotation window, or a token from another issuer).
var errUnknownKey = errors.New("no key with this kid")

// keyFor picks the keys a token may be checked against: by kid when the token names one,
// else every key of its alg. Each alg only ever gets its own kind of key, so an HS256 token
// can never be checked against the RSA public key's bytes used as an HMAC secret (the
// alg-confusion attack: the public key is public, so anyone could sign such a token).
func (v *jwtVerifier) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if raw, named := t.Header["kid"]; named {
		kid, ok := raw.(string)
		if !ok || kid == "" {
			return nil, fmt.Errorf("header kid must be a non-empty string, got %T", raw)
		}
		var set keySet
		if v.set != nil {
			set = v.set.get()
		}
		k, ok := set.byKid(kid)
		if !ok {
			return nil, fmt.Errorf("%w: %q", errUnknownKey, kid)
		}
		if k.alg != alg {
			return nil, fmt.Errorf("key %q is for %s, the token says %s", kid, k.alg, alg)
		}
		return golangJWTKey(k.key), nil
	}
	var keys []jwt.VerificationKey
	switch alg {
	case jwt.SigningMethodHS256.Alg():
		if v.hs256 != nil {
			keys = append(keys, v.hs256.get().secret)
		}
	case jwt.SigningMethodRS256.Alg():
		if v.rs256 != nil {
			keys = append(keys, v.rs256.get())
		}
	}
	if v.set != nil {
		for _, k := range v.set.get() {
			if k.alg == alg {
				keys = append(keys, golangJWTKey(k.key))
			}
		}
	}
	switch len(keys) {
	case 0:
		return nil, fmt.Errorf("no key configured for alg %q", alg)
	case 1:
		// The parser tries a set's keys in turn and returns the last one's error: for one key
		// that is the key's own result, without a set boxed per handshake.
		return keys[0], nil
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
}

// golangJWTKey is a key as golang-jwt's HS256 and RS256 methods take it.
func golangJWTKey(key any) jwt.VerificationKey {
	if k, ok := key.(*hmacKey); ok {
		return k.secret
	}
	return key
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
