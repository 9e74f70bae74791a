package rebalance

import (
	"sync"
	"time"
)

// MaxNonces bounds the nonces a Verifier remembers.
const MaxNonces = 4096

// Verifier accepts each authentic request for its pod once, within MaxSkew of its clock.
type Verifier struct {
	// Pod is this pod's name (the gateway's server id).
	Pod string
	// Key returns the current key (re-read so a rotated Secret takes effect).
	Key func() ([]byte, error)
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu     sync.Mutex
	nonces map[string]time.Time // accepted nonce → when it leaves the window; guarded by mu
}

// Verify checks an incoming request: signature, pod, time, nonce. An accepted request's
// nonce is remembered until its time + MaxSkew, so it cannot be accepted again.
func (v *Verifier) Verify(auth string, body []byte) (Request, error) {
	if len(body) > MaxBodyBytes {
		return Request{}, refuse(TooLarge, "body over %d bytes", MaxBodyBytes)
	}
	key, err := v.Key()
	if err != nil {
		return Request{}, refuse(Unauthenticated, "%v", err)
	}
	r, err := Authenticate(key, auth, body)
	if err != nil {
		return Request{}, err
	}
	if r.Pod != v.Pod {
		return Request{}, refuse(WrongPod, "request for %q", r.Pod)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	issued := time.UnixMilli(r.Issued)
	if d := now.Sub(issued); d > MaxSkew || d < -MaxSkew {
		return Request{}, refuse(Stale, "issued %v from this pod's clock", d.Round(time.Millisecond))
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.nonces == nil {
		v.nonces = map[string]time.Time{}
	}
	if _, seen := v.nonces[r.Nonce]; seen {
		return Request{}, refuse(Replayed, "nonce already used")
	}
	if len(v.nonces) >= MaxNonces {
		for n, until := range v.nonces {
			if !now.Before(until) {
				delete(v.nonces, n)
			}
		}
		if len(v.nonces) >= MaxNonces {
			return Request{}, refuse(Busy, "%d requests inside the window", len(v.nonces))
		}
	}
	// Remembered past the latest moment the request could still pass the time check.
	v.nonces[r.Nonce] = issued.Add(MaxSkew + time.Second)
	return r, nil
}
