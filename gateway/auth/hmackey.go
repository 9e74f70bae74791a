package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
)

// hmacKey is an HS256 secret with a pool of HMAC states keyed with it. hmac.New derives the
// keyed inner and outer SHA-256 states on every call (about 0.7 KiB with the sum, per
// handshake, in golang-jwt's SigningMethodHMAC.Verify): garbage that idle connections' RSS
// carries until the next GC (docs/benchmarks.md, issue 17). A pooled state is Reset to the
// keyed state instead. The pool goes with the key: a rotated key file parses into a new
// hmacKey, and the old one's states are collected with it.
type hmacKey struct {
	secret []byte
	states sync.Pool // of *hmacState
}

type hmacState struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

func newHMACKey(secret []byte) *hmacKey { return &hmacKey{secret: secret} }

// verify reports whether sig is the HMAC-SHA256 of input under the key (in constant time,
// as golang-jwt's check).
func (k *hmacKey) verify(input, sig []byte) bool {
	s, _ := k.states.Get().(*hmacState)
	if s == nil {
		s = &hmacState{mac: hmac.New(sha256.New, k.secret)}
	}
	s.mac.Write(input)
	ok := hmac.Equal(sig, s.mac.Sum(s.sum[:0]))
	s.mac.Reset()
	k.states.Put(s)
	return ok
}
