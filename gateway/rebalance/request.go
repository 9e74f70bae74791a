// Package rebalance is the operator's request to a gateway pod to move some of its sessions
// away (GOAWAY REBALANCE, paced), and the gateway's check of it.
//
// The request travels over the network (POST /rebalance on the pod's admin port), so it is
// authenticated: the operator signs it with HMAC-SHA256 under a key only it and the pods
// hold (the Secret <name>-rebalance, mounted into the pods), and names the pod, a time and a
// random nonce. A pod accepts a request only with a valid MAC, its own name, a time within
// MaxSkew of its clock and a nonce it has not seen in that window: another pod of the cluster
// cannot forge one, and one seen on the wire cannot be replayed, here or on another pod
// (docs/security.md).
package rebalance

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Path is where the admin port takes requests (POST only).
const Path = "/rebalance"

// Header carries the signature: Scheme + " " + hex(HMAC-SHA256(key, domain + body)).
const (
	Header = "Authorization"
	Scheme = "TCPGW-HMAC-SHA256"
	// domain separates this MAC from any other use of the key.
	domain = "tcpgw-rebalance-v1\n"
)

// Bounds of a request.
const (
	// MaxBodyBytes bounds the body read before the MAC is checked.
	MaxBodyBytes = 1024
	// MaxSkew is how far a request's time may be from the pod's clock, either way; nonces
	// are remembered this long after the request's time.
	MaxSkew = 30 * time.Second
	// MaxCount and MaxRate bound what a request may ask; MaxRate is the gateway's own bound
	// (gateway/server MaxRebalanceRate).
	MaxCount = 1 << 24
	MaxRate  = 1000
	// MinKeyBytes is the shortest key accepted.
	MinKeyBytes = 32
	// KeyBytes is the size of the keys the operator makes.
	KeyBytes = 32
)

// Request asks one pod to move Count of its sessions away at Rate per second.
type Request struct {
	Pod    string `json:"pod"`
	Count  int    `json:"count"`
	Rate   int    `json:"rate"`
	Issued int64  `json:"issued"` // Unix milliseconds
	Nonce  string `json:"nonce"`  // base64url, 16 random bytes
}

// New is a request for pod issued now, with a fresh nonce.
func New(pod string, count, rate int, now time.Time) (Request, error) {
	n := make([]byte, 16)
	if _, err := rand.Read(n); err != nil {
		return Request{}, err
	}
	return Request{Pod: pod, Count: count, Rate: rate, Issued: now.UnixMilli(), Nonce: base64.RawURLEncoding.EncodeToString(n)}, nil
}

// Sign encodes r and returns the body and the Authorization header value.
func Sign(key []byte, r Request) (body []byte, auth string, err error) {
	if len(key) < MinKeyBytes {
		return nil, "", fmt.Errorf("rebalance key of %d bytes, want at least %d", len(key), MinKeyBytes)
	}
	body, err = json.Marshal(r)
	if err != nil {
		return nil, "", err
	}
	return body, Scheme + " " + hex.EncodeToString(mac(key, body)), nil
}

func mac(key, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(domain))
	h.Write(body)
	return h.Sum(nil)
}

// Reason says why a request was refused: the result label of
// tcpgw_rebalance_requests_total and the text of the answer's body.
type Reason string

const (
	// Unauthenticated: no signature, a malformed one, or one that does not match.
	Unauthenticated Reason = "unauthenticated"
	// Stale: the request's time is more than MaxSkew from the pod's clock.
	Stale Reason = "stale"
	// Replayed: a nonce already accepted within the window.
	Replayed Reason = "replayed"
	// WrongPod: a request for another pod.
	WrongPod Reason = "wrong_pod"
	// Invalid: a signed body that does not hold a sensible request (bad JSON, count or rate
	// out of bounds, no nonce).
	Invalid Reason = "invalid"
	// TooLarge: a body over MaxBodyBytes.
	TooLarge Reason = "too_large"
	// Busy: the nonce memory is full of requests still inside the window (the operator
	// sends a few per minute; a flood of valid ones means the key leaked).
	Busy Reason = "busy"
)

// Reasons are every refusal reason, in a stable order.
func Reasons() []Reason {
	return []Reason{Unauthenticated, Stale, Replayed, WrongPod, Invalid, TooLarge, Busy}
}

// Error is a refused request.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func refuse(r Reason, format string, a ...any) error {
	return &Error{Reason: r, Err: fmt.Errorf(format, a...)}
}

// Authenticate checks body's signature (the Authorization header value auth) under key and
// decodes it. It does not check the pod, the time or the nonce: Verifier does.
func Authenticate(key []byte, auth string, body []byte) (Request, error) {
	if len(key) < MinKeyBytes {
		return Request{}, refuse(Unauthenticated, "no usable key")
	}
	got, ok := strings.CutPrefix(auth, Scheme+" ")
	if !ok {
		return Request{}, refuse(Unauthenticated, "no %s signature", Scheme)
	}
	sig, err := hex.DecodeString(got)
	if err != nil || !hmac.Equal(sig, mac(key, body)) {
		return Request{}, refuse(Unauthenticated, "signature does not match")
	}
	var r Request
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, refuse(Invalid, "body: %v", err)
	}
	switch {
	case r.Count < 1 || r.Count > MaxCount:
		return Request{}, refuse(Invalid, "count %d not in [1, %d]", r.Count, MaxCount)
	case r.Rate < 1 || r.Rate > MaxRate:
		return Request{}, refuse(Invalid, "rate %d not in [1, %d]", r.Rate, MaxRate)
	case len(r.Nonce) < 16 || len(r.Nonce) > 64:
		return Request{}, refuse(Invalid, "nonce of %d characters", len(r.Nonce))
	}
	return r, nil
}

// ErrNoKey is returned by a key source that has no key.
var ErrNoKey = errors.New("no rebalance key")
