package rebalance

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var (
	testKey  = bytes.Repeat([]byte("k"), 32)
	otherKey = bytes.Repeat([]byte("o"), 32)
	t0       = time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
)

func verifier(now *time.Time) *Verifier {
	return &Verifier{Pod: "chat-0", Key: func() ([]byte, error) { return testKey, nil }, Now: func() time.Time { return *now }}
}

func signed(t *testing.T, key []byte, r Request) ([]byte, string) {
	t.Helper()
	body, auth, err := Sign(key, r)
	if err != nil {
		t.Fatal(err)
	}
	return body, auth
}

func req(nonce string) Request {
	return Request{Pod: "chat-0", Count: 10, Rate: 5, Issued: t0.UnixMilli(), Nonce: nonce}
}

func wantReason(t *testing.T, err error, want Reason) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Reason != want {
		t.Fatalf("err = %v, want reason %s", err, want)
	}
}

// Each attack on the endpoint, refused with its reason; each check is the only thing that
// refuses its case (the valid request beside it passes).
func TestVerifyRefusesForgedReplayedAndMisdirected(t *testing.T) {
	now := t0
	valid := req("nonce-valid-0123456789")
	for _, tc := range []struct {
		name string
		body func() ([]byte, string)
		want Reason
	}{
		{"unsigned", func() ([]byte, string) { b, _ := signed(t, testKey, req("nonce-unsigned-01234")); return b, "" }, Unauthenticated},
		{"another scheme", func() ([]byte, string) {
			b, a := signed(t, testKey, req("nonce-bearer-0123456"))
			return b, "Bearer " + strings.TrimPrefix(a, Scheme+" ")
		}, Unauthenticated},
		{"not hex", func() ([]byte, string) {
			b, _ := signed(t, testKey, req("nonce-nothex-0123456"))
			return b, Scheme + " zz"
		}, Unauthenticated},
		{"another key", func() ([]byte, string) { return signed(t, otherKey, req("nonce-otherkey-01234")) }, Unauthenticated},
		{"tampered count", func() ([]byte, string) {
			b, a := signed(t, testKey, req("nonce-tamper-0123456"))
			return bytes.Replace(b, []byte(`"count":10`), []byte(`"count":99`), 1), a
		}, Unauthenticated},
		{"another pod", func() ([]byte, string) {
			r := req("nonce-otherpod-01234")
			r.Pod = "chat-1"
			return signed(t, testKey, r)
		}, WrongPod},
		{"too old", func() ([]byte, string) {
			r := req("nonce-old-0123456789")
			r.Issued = t0.Add(-MaxSkew - time.Millisecond).UnixMilli()
			return signed(t, testKey, r)
		}, Stale},
		{"from the future", func() ([]byte, string) {
			r := req("nonce-future-0123456")
			r.Issued = t0.Add(MaxSkew + time.Millisecond).UnixMilli()
			return signed(t, testKey, r)
		}, Stale},
		{"zero count", func() ([]byte, string) { r := req("nonce-zero-012345678"); r.Count = 0; return signed(t, testKey, r) }, Invalid},
		{"huge rate", func() ([]byte, string) {
			r := req("nonce-rate-012345678")
			r.Rate = MaxRate + 1
			return signed(t, testKey, r)
		}, Invalid},
		{"short nonce", func() ([]byte, string) { return signed(t, testKey, req("short")) }, Invalid},
		{"unknown field", func() ([]byte, string) {
			body := []byte(`{"pod":"chat-0","count":1,"rate":1,"issued":` + fmt.Sprint(t0.UnixMilli()) + `,"nonce":"nonce-unknown-012345","all":true}`)
			return body, Scheme + " " + fmt.Sprintf("%x", mac(testKey, body))
		}, Invalid},
		{"too large", func() ([]byte, string) { return bytes.Repeat([]byte(" "), MaxBodyBytes+1), "" }, TooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, auth := tc.body()
			_, err := verifier(&now).Verify(auth, body)
			wantReason(t, err, tc.want)
		})
	}
	body, auth := signed(t, testKey, valid)
	got, err := verifier(&now).Verify(auth, body)
	if err != nil || got != valid {
		t.Fatalf("valid request: %+v, %v", got, err)
	}
}

// A request seen on the wire cannot be replayed: not within the window (the nonce is
// remembered), not after it (stale), not on another pod (wrong_pod).
func TestVerifyRefusesReplay(t *testing.T) {
	now := t0
	v := verifier(&now)
	body, auth := signed(t, testKey, req("nonce-replay-0123456"))
	if _, err := v.Verify(auth, body); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(MaxSkew)
	_, err := v.Verify(auth, body)
	wantReason(t, err, Replayed)
	now = t0.Add(MaxSkew + time.Millisecond)
	_, err = v.Verify(auth, body)
	wantReason(t, err, Stale)
	other := &Verifier{Pod: "chat-1", Key: v.Key, Now: v.Now}
	_, err = other.Verify(auth, body)
	wantReason(t, err, WrongPod)
}

// The nonce memory is bounded: full of requests inside the window, the next is refused as
// busy; once they left the window, room is made.
func TestVerifyNonceMemoryBounded(t *testing.T) {
	now := t0
	v := verifier(&now)
	for i := range MaxNonces {
		body, auth := signed(t, testKey, req(fmt.Sprintf("nonce-fill-%012d", i)))
		if _, err := v.Verify(auth, body); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	body, auth := signed(t, testKey, req("nonce-one-more-01234"))
	_, err := v.Verify(auth, body)
	wantReason(t, err, Busy)
	now = t0.Add(MaxSkew + time.Second)
	r := req("nonce-later-01234567")
	r.Issued = now.UnixMilli()
	body, auth = signed(t, testKey, r)
	if _, err := v.Verify(auth, body); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if len(v.nonces) != 1 {
		t.Errorf("%d nonces remembered after the sweep, want 1", len(v.nonces))
	}
}

func TestSignRefusesShortKey(t *testing.T) {
	if _, _, err := Sign([]byte("short"), req("nonce-short-key-0123")); err == nil {
		t.Error("signed with a 5-byte key")
	}
	now := t0
	v := &Verifier{Pod: "chat-0", Key: func() ([]byte, error) { return []byte("short"), nil }, Now: func() time.Time { return now }}
	body, auth := signed(t, testKey, req("nonce-short-key-4567"))
	_, err := v.Verify(auth, body)
	wantReason(t, err, Unauthenticated)
}
