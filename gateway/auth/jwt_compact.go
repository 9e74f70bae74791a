package auth

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The token fast path. golang-jwt decodes a token's header and claims into maps by reflection
// and makes new HMAC states per check: about 3 KiB of garbage per handshake, which idle
// connections' RSS carries until the next GC (docs/benchmarks.md, issue 17). verifyCompact
// reads only the members the verifier looks at, with pooled buffers and HMAC states, and
// decides only tokens it reads exactly as golang-jwt would: the rest go to golang-jwt
// (verifyGolangJWT), so every answer is golang-jwt's. A token is decided here when its three
// parts decode, header and claims are objects objectReader accepts, alg is HS256 or RS256
// and its key is known (kid, when present, a non-empty string naming a key of that alg).
// Everything it then decides (bad signature, the claim checks, the identity claims) follows
// golang-jwt v5's Parser, Validator and MapClaims with this verifier's options, step for step;
// jwt_differential_test.go and FuzzJWTMatchesGolangJWT hold the two paths to the same answers.

// Claim and header members the fast path reads, in claimNames / headerNames order.
const (
	claimExp = iota
	claimNbf
	claimIat
	claimIss
	claimAud
	claimUser   // cfg.UserClaim
	claimGroups // cfg.GroupsClaim
	numClaims
)

const (
	headerAlg = iota
	headerKid
	numHeader
)

var headerNames = []string{headerAlg: "alg", headerKid: "kid"}

func claimNames(userClaim, groupsClaim string) []string {
	return []string{claimExp: "exp", claimNbf: "nbf", claimIat: "iat", claimIss: "iss", claimAud: "aud",
		claimUser: userClaim, claimGroups: groupsClaim}
}

// compactScratch is one check's working memory, pooled.
type compactScratch struct {
	buf    []byte // the token's bytes, then its decoded header, claims and signature
	obj    objectReader
	header [numHeader][]byte
	claims [numClaims][]byte
	items  [][]byte
}

var compactScratchPool = sync.Pool{New: func() any { return new(compactScratch) }}

// maxPooledScratch: a scratch grown by a token larger than this is dropped, not pooled.
const maxPooledScratch = 16 << 10

func (s *compactScratch) release() {
	if cap(s.buf) > maxPooledScratch || cap(s.obj.str) > maxPooledScratch {
		return
	}
	clear(s.items[:cap(s.items)])
	s.items = s.items[:0]
	compactScratchPool.Put(s)
}

// verifyCompact returns decided=false for a token it leaves to golang-jwt.
func (v *jwtVerifier) verifyCompact(token string) (id Identity, decided bool, err error) {
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return Identity{}, false, nil
	}
	c, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return Identity{}, false, nil
	}
	s := compactScratchPool.Get().(*compactScratch)
	defer s.release()
	s.obj.reset()

	// One buffer: the token's bytes (the signed input is its first two parts with their dot),
	// then the three decoded parts. golang-jwt decodes with the same non-strict RawURLEncoding.
	enc := base64.RawURLEncoding
	n := len(token) + enc.DecodedLen(len(h)) + enc.DecodedLen(len(c)) + enc.DecodedLen(len(sig))
	s.buf = slices.Grow(s.buf[:0], n)[:n]
	raw := s.buf[:copy(s.buf, token)]
	free := s.buf[len(token):]
	var parts [3][]byte
	for i, seg := range [3][]byte{raw[:len(h)], raw[len(h)+1 : len(h)+1+len(c)], raw[len(h)+len(c)+2:]} {
		m, err := enc.Decode(free, seg)
		if err != nil {
			return Identity{}, false, nil
		}
		parts[i], free = free[:m], free[m:]
	}
	if !s.obj.members(parts[0], headerNames, s.header[:]) || !s.obj.members(parts[1], v.claimNames, s.claims[:]) {
		return Identity{}, false, nil
	}
	alg, ok := s.obj.unquote(s.header[headerAlg])
	if !ok {
		return Identity{}, false, nil
	}
	var kid []byte
	named := s.header[headerKid] != nil
	if named {
		if kid, ok = s.obj.unquote(s.header[headerKid]); !ok || len(kid) == 0 {
			return Identity{}, false, nil
		}
	}
	var valid, known bool
	switch string(alg) {
	case jwt.SigningMethodHS256.Alg():
		valid, known = v.checkSignature(jwt.SigningMethodHS256.Alg(), kid, named, raw[:len(h)+1+len(c)], parts[2])
	case jwt.SigningMethodRS256.Alg():
		valid, known = v.checkSignature(jwt.SigningMethodRS256.Alg(), kid, named, raw[:len(h)+1+len(c)], parts[2])
	}
	if !known || s.obj.bad {
		return Identity{}, false, nil
	}
	if !valid {
		return Identity{}, true, &Error{Reason: ReasonInvalidToken, Err: fmt.Errorf("%w: %w", jwt.ErrTokenSignatureInvalid, jwt.ErrSignatureInvalid)}
	}
	id, err = v.identity(s)
	if s.obj.bad {
		return Identity{}, false, nil
	}
	return id, true, err
}

// checkSignature checks sig over input with the keys keyFor gives golang-jwt for alg and kid,
// in the same order; known is false where keyFor fails (no such kid, a kid of another alg,
// no key for the alg).
func (v *jwtVerifier) checkSignature(alg string, kid []byte, named bool, input, sig []byte) (valid, known bool) {
	if named {
		if v.set == nil {
			return false, false
		}
		for _, k := range v.set.get() {
			if k.kid == string(kid) {
				if k.alg != alg {
					return false, false
				}
				return verifyWithKey(k.key, input, sig), true
			}
		}
		return false, false
	}
	switch {
	case alg == jwt.SigningMethodHS256.Alg() && v.hs256 != nil:
		if known = true; v.hs256.get().verify(input, sig) {
			return true, true
		}
	case alg == jwt.SigningMethodRS256.Alg() && v.rs256 != nil:
		if known = true; verifyWithKey(v.rs256.get(), input, sig) {
			return true, true
		}
	}
	if v.set != nil {
		for _, k := range v.set.get() {
			if k.alg == alg {
				if known = true; verifyWithKey(k.key, input, sig) {
					return true, true
				}
			}
		}
	}
	return false, known
}

// verifyWithKey is golang-jwt's HS256 / RS256 Verify for the gateway's key types.
func verifyWithKey(key any, input, sig []byte) bool {
	switch k := key.(type) {
	case *hmacKey:
		return k.verify(input, sig)
	case *rsa.PublicKey:
		digest := sha256.Sum256(input)
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
	}
	return false
}

// identity checks the claims as golang-jwt's Validator does with the verifier's options
// (exp required, nbf and iat when present, all with leeway; iss and aud when configured),
// then reads the user and groups claims as Verify does from MapClaims.
func (v *jwtVerifier) identity(s *compactScratch) (Identity, error) {
	now := v.now()
	// An expired token is expired_token whatever else is wrong with its claims: golang-jwt
	// joins every failed check and Verify looks for ErrTokenExpired among them.
	exp, set, err := numericDate(s.claims[claimExp])
	switch {
	case err != nil:
		return Identity{}, claimsError(err)
	case !set:
		return Identity{}, claimsError(fmt.Errorf("%w: exp claim is required", jwt.ErrTokenRequiredClaimMissing))
	case !now.Before(exp.Add(v.leeway)):
		return Identity{}, &Error{Reason: ReasonExpiredToken, Err: fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, jwt.ErrTokenExpired)}
	}
	if nbf, set, err := numericDate(s.claims[claimNbf]); err != nil {
		return Identity{}, claimsError(err)
	} else if set && now.Before(nbf.Add(-v.leeway)) {
		return Identity{}, claimsError(jwt.ErrTokenNotValidYet)
	}
	if iat, set, err := numericDate(s.claims[claimIat]); err != nil {
		return Identity{}, claimsError(err)
	} else if set && now.Before(iat.Add(-v.leeway)) {
		return Identity{}, claimsError(jwt.ErrTokenUsedBeforeIssued)
	}
	if v.audience != "" {
		if err := v.checkAudience(s); err != nil {
			return Identity{}, claimsError(err)
		}
	}
	if v.issuer != "" {
		raw := s.claims[claimIss]
		iss, isString := s.obj.unquote(raw)
		switch {
		case raw != nil && !isString:
			return Identity{}, claimsError(fmt.Errorf("%w: iss is invalid", jwt.ErrInvalidType))
		case len(iss) == 0:
			return Identity{}, claimsError(fmt.Errorf("%w: iss claim is required", jwt.ErrTokenRequiredClaimMissing))
		case string(iss) != v.issuer:
			return Identity{}, claimsError(jwt.ErrTokenInvalidIssuer)
		}
	}

	user, ok := s.obj.unquote(s.claims[claimUser])
	if !ok || len(user) == 0 {
		return Identity{}, fail(ReasonInvalidToken, "claim %q must be a non-empty string", v.userClaim)
	}
	groups, err := s.groups()
	if err != nil {
		return Identity{}, fail(ReasonInvalidToken, "claim %q: %v", v.groupsClaim, err)
	}
	return Identity{UserID: string(user), Groups: groups, ExpiresAt: exp}, nil
}

// checkAudience is golang-jwt's verifyAudience over MapClaims' reading of aud: a string is
// one audience, an array must hold only strings, any other value counts as no audience.
func (v *jwtVerifier) checkAudience(s *compactScratch) error {
	raw := s.claims[claimAud]
	s.items = s.items[:0]
	switch kind(raw) {
	case '"':
		aud, _ := s.obj.unquote(raw)
		s.items = append(s.items, aud)
	case '[':
		var all bool
		if s.items, all = s.obj.stringArray(raw, s.items); !all {
			return fmt.Errorf("%w: aud is invalid", jwt.ErrInvalidType)
		}
	}
	if len(s.items) == 0 || len(s.items) == 1 && len(s.items[0]) == 0 {
		return fmt.Errorf("%w: aud claim is required", jwt.ErrTokenRequiredClaimMissing)
	}
	for _, a := range s.items {
		if string(a) == v.audience {
			return nil
		}
	}
	return jwt.ErrTokenInvalidAudience
}

// groups is stringList over the groups claim: absent or null is no groups, an array of
// strings is the groups (empty, not nil, for []), anything else an error.
func (s *compactScratch) groups() ([]string, error) {
	raw := s.claims[claimGroups]
	switch kind(raw) {
	case 0, 'n':
		return nil, nil
	case '[':
	default:
		return nil, fmt.Errorf("must be an array of strings, got %s", jsonKindName(raw))
	}
	items, all := s.obj.stringArray(raw, s.items[:0])
	s.items = items
	if !all {
		return nil, fmt.Errorf("item %d must be a string", len(items))
	}
	groups := make([]string, len(items))
	for i, g := range items {
		groups[i] = string(g)
	}
	return groups, nil
}

// numericDate is MapClaims.parseNumericDate: absent or 0 is no date (set=false), a number
// is seconds since the epoch (golang-jwt's conversion, truncated to jwt.TimePrecision),
// anything else (null included) is ErrInvalidType.
func numericDate(raw []byte) (t time.Time, set bool, err error) {
	if raw == nil {
		return time.Time{}, false, nil
	}
	if kind(raw) != '0' {
		return time.Time{}, false, jwt.ErrInvalidType
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return time.Time{}, false, jwt.ErrInvalidType // objectReader refuses such numbers before this
	}
	if f == 0 {
		return time.Time{}, false, nil
	}
	round, frac := math.Modf(f)
	return time.Unix(int64(round), int64(frac*1e9)).Truncate(jwt.TimePrecision), true, nil
}

// kind is the JSON kind of a raw value from objectReader: '"', '0' (number), '{', '[', 't',
// 'f', 'n', or 0 for none.
func kind(raw []byte) byte {
	if len(raw) == 0 {
		return 0
	}
	switch c := raw[0]; c {
	case '"', '{', '[', 't', 'f', 'n':
		return c
	}
	return '0'
}

// jsonKindName names a value's kind as Verify's errors name the Go type encoding/json gives it.
func jsonKindName(raw []byte) string {
	switch kind(raw) {
	case '"':
		return "string"
	case '{':
		return "map[string]interface {}"
	case 't', 'f':
		return "bool"
	}
	return "float64"
}

func claimsError(err error) *Error {
	return &Error{Reason: ReasonInvalidToken, Err: fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, err)}
}
