package auth

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// MaxKeySetKeys bounds a key set: a token without a kid is tried against every key of its
	// alg, so the set's size is the most signature checks one handshake can cost.
	MaxKeySetKeys = 16
	// minRSABits: RS256 keys in a set must be at least this large (NIST SP 800-131A).
	minRSABits = 2048
)

// namedKey is one verification key of a key set.
type namedKey struct {
	kid string
	alg string // jwt alg: HS256 or RS256
	key any    // *hmacKey for HS256, *rsa.PublicKey for RS256: never the other way round
}

// keySet is a parsed JSON Web Key Set.
type keySet []namedKey

// byKid returns the key named kid, if any.
func (s keySet) byKid(kid string) (namedKey, bool) {
	for _, k := range s {
		if k.kid == kid {
			return k, true
		}
	}
	return namedKey{}, false
}

// jwk is the subset of RFC 7517/7518 members the gateway reads; others (x5c, key_ops...) are
// ignored.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	K   string `json:"k"` // oct: the secret
	N   string `json:"n"` // RSA: modulus
	E   string `json:"e"` // RSA: exponent
}

// parseKeySet reads a JWKS document ({"keys":[...]}). Every key needs a unique kid and must be
// an HS256 secret ("kty":"oct", at least 32 bytes) or an RS256 public key ("kty":"RSA", at
// least 2048 bits); "alg", when present, must agree, and "use", when present, must be "sig".
// Anything else fails the whole set: a half-read set would refuse tokens the operator
// expects to work, and the previous set stays in service instead (see keyFile).
func parseKeySet(b []byte) (keySet, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	switch {
	case len(doc.Keys) == 0:
		return nil, errors.New(`key set has no keys (want {"keys":[...]})`)
	case len(doc.Keys) > MaxKeySetKeys:
		return nil, fmt.Errorf("key set has %d keys, at most %d are allowed", len(doc.Keys), MaxKeySetKeys)
	}
	set := make(keySet, 0, len(doc.Keys))
	for i, k := range doc.Keys {
		nk, err := k.parse()
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i, k.Kid, err)
		}
		if _, dup := set.byKid(nk.kid); dup {
			return nil, fmt.Errorf("key %d: kid %q appears twice", i, k.Kid)
		}
		set = append(set, nk)
	}
	return set, nil
}

func (k jwk) parse() (namedKey, error) {
	if k.Kid == "" {
		return namedKey{}, errors.New("kid is required: tokens name their key by it")
	}
	if k.Use != "" && k.Use != "sig" {
		return namedKey{}, fmt.Errorf("use %q: only signature keys (\"sig\") verify tokens", k.Use)
	}
	switch k.Kty {
	case "oct":
		if k.Alg != "" && k.Alg != jwt.SigningMethodHS256.Alg() {
			return namedKey{}, fmt.Errorf("alg %q: oct keys verify HS256 only", k.Alg)
		}
		secret, err := b64url(k.K)
		if err != nil {
			return namedKey{}, fmt.Errorf("k: %w", err)
		}
		if len(secret) < minHS256SecretBytes {
			return namedKey{}, fmt.Errorf("HS256 secret is %d bytes, need at least %d (RFC 7518 §3.2)", len(secret), minHS256SecretBytes)
		}
		return namedKey{kid: k.Kid, alg: jwt.SigningMethodHS256.Alg(), key: newHMACKey(secret)}, nil
	case "RSA":
		if k.Alg != "" && k.Alg != jwt.SigningMethodRS256.Alg() {
			return namedKey{}, fmt.Errorf("alg %q: RSA keys verify RS256 only", k.Alg)
		}
		n, err := b64url(k.N)
		if err != nil {
			return namedKey{}, fmt.Errorf("n: %w", err)
		}
		e, err := b64url(k.E)
		if err != nil {
			return namedKey{}, fmt.Errorf("e: %w", err)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n)}
		exp := new(big.Int).SetBytes(e)
		if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 || exp.Bit(0) == 0 {
			return namedKey{}, errors.New("e must be an odd exponent between 3 and 2^31-1")
		}
		pub.E = int(exp.Int64())
		if bits := pub.N.BitLen(); bits < minRSABits {
			return namedKey{}, fmt.Errorf("RSA modulus is %d bits, need at least %d", bits, minRSABits)
		}
		return namedKey{kid: k.Kid, alg: jwt.SigningMethodRS256.Alg(), key: pub}, nil
	case "":
		return namedKey{}, errors.New("kty is required")
	default:
		return namedKey{}, fmt.Errorf("kty %q is not supported (oct for HS256, RSA for RS256)", k.Kty)
	}
}

// b64url decodes base64url, with or without padding (RFC 7515 says without; some tools pad).
func b64url(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("required")
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
