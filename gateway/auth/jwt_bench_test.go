package auth

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkJWTVerifyHS256 is one handshake's token check as the gateway does it (HS256 secret
// file, issuer and audience checked, a user and two groups): its allocations are garbage the
// moment the session is established, and with 10000 handshakes they are what an idle
// gateway's RSS carries above its live heap until the next GC (docs/benchmarks.md).
func BenchmarkJWTVerifyHS256(b *testing.B) {
	f := newJWTFixture(b)
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, f.claims(nil)).SignedString(f.secret)
	if err != nil {
		b.Fatal(err)
	}
	req := Request{Token: token, DeviceID: "d", ClientAddress: "127.0.0.1:1"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.verify.Verify(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
