package server

import (
	"slices"
	"testing"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// TestRequestBucketIsMadeOnFirstUse checks that a connection holds no rate limiter until it
// needs one, and that the one it makes then starts full, as one made at the handshake would.
func TestRequestBucketIsMadeOnFirstUse(t *testing.T) {
	c := &conn{srv: &Server{limits: config.Limits{RequestsPerSecond: 0.001, RequestBurst: 2}}}
	if c.limiter != nil {
		t.Fatal("a new connection holds a limiter")
	}
	got := []bool{c.allow(), c.allow(), c.allow()}
	if want := []bool{true, true, false}; !slices.Equal(got, want) {
		t.Fatalf("allow = %v, want %v", got, want)
	}
}
