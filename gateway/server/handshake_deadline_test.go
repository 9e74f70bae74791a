package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// TestWebhookCallEndsAtTheHandshakeDeadline: only the local (JWT) verifier is called without
// a deadline; a webhook's call is still cut at limits.handshakeTimeout, not at the webhook's
// own (longer) timeout, so a hanging webhook cannot hold handshakes past their deadline.
func TestWebhookCallEndsAtTheHandshakeDeadline(t *testing.T) {
	const handshakeTimeout = 500 * time.Millisecond
	held := make(chan time.Duration, 1)
	webhook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// net/http notices the client hanging up only once the body has been read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(wait):
		}
		held <- time.Since(start)
	}))
	t.Cleanup(webhook.Close)
	h := start(t, nil, func(c *config.Config) {
		c.Auth = config.Auth{Webhook: &config.WebhookAuth{URL: webhook.URL, Timeout: dur(wait)}}
		c.Limits.HandshakeTimeout = dur(handshakeTimeout)
	})
	r := h.raw()
	r.send(&pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{ProtocolVersion: protocol.Version, Token: "t"}}})
	select {
	case d := <-held:
		if d >= wait/2 {
			t.Fatalf("the webhook call was held %v: not cut at the handshake deadline (%v)", d, handshakeTimeout)
		}
	case <-time.After(2 * wait):
		t.Fatal("the webhook was not called")
	}
}
