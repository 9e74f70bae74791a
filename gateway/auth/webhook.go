package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

const (
	// maxWebhookResponseBytes bounds what a webhook reply may make the gateway read and hold;
	// a real reply is a few hundred bytes.
	maxWebhookResponseBytes = 64 << 10
	// maxDenyReasonBytes bounds the webhook's deny reason passed on to the client.
	maxDenyReasonBytes = 256
)

type webhookVerifier struct {
	url     string
	timeout time.Duration
	client  *http.Client
}

// webhookRequest is the body POSTed to the webhook.
type webhookRequest struct {
	Token         string `json:"token"`
	DeviceID      string `json:"deviceID"`
	ClientAddress string `json:"clientAddress"`
}

// webhookResponse is the webhook's answer; unknown fields are ignored so the webhook can
// evolve first.
type webhookResponse struct {
	Allowed bool     `json:"allowed"`
	UserID  string   `json:"userID"`
	Groups  []string `json:"groups"`
	Reason  string   `json:"reason"`
	// ExpiresAt (Unix seconds, like a JWT's exp) bounds the session: the gateway asks the
	// client for a new token ahead of it. Absent or 0: the session never needs a refresh.
	ExpiresAt int64 `json:"expiresAt"`
}

// NewWebhook verifies tokens by POSTing them to cfg.URL, each call bounded by cfg.Timeout
// (default 2s). client may be nil for a dedicated client; its own Timeout is left alone, the
// per-call deadline comes from the context. A 200 with allowed=true is an Identity;
// allowed=false is ReasonDenied with the webhook's reason; anything else (transport error,
// timeout, other status, malformed or oversized body, allowed without userID) is
// ReasonWebhookUnavailable.
func NewWebhook(cfg config.WebhookAuth, client *http.Client) Verifier {
	cfg.Default()
	if client == nil {
		client = &http.Client{}
	}
	return &webhookVerifier{url: cfg.URL, timeout: cfg.Timeout.Duration, client: client}
}

// Verify asks the webhook. Empty tokens are rejected without a call.
func (w *webhookVerifier) Verify(ctx context.Context, req Request) (Identity, error) {
	if req.Token == "" {
		return Identity{}, fail(ReasonMissingToken, "handshake has no token")
	}
	body, err := json.Marshal(webhookRequest(req))
	if err != nil {
		return Identity{}, fail(ReasonWebhookUnavailable, "while encoding request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Identity{}, fail(ReasonWebhookUnavailable, "while building request: %w", err)
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/json")

	resp, err := w.client.Do(httpReq)
	if err != nil {
		return Identity{}, fail(ReasonWebhookUnavailable, "while calling webhook: %w", err)
	}
	defer resp.Body.Close()
	// Read one byte past the limit to tell "exactly at the limit" from "too large".
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxWebhookResponseBytes+1))
	if err != nil {
		return Identity{}, fail(ReasonWebhookUnavailable, "while reading webhook response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Identity{}, fail(ReasonWebhookUnavailable, "webhook answered %s", resp.Status)
	}
	if len(data) > maxWebhookResponseBytes {
		return Identity{}, fail(ReasonWebhookUnavailable, "webhook response exceeds %d bytes", maxWebhookResponseBytes)
	}
	var ans webhookResponse
	if err := json.Unmarshal(data, &ans); err != nil {
		return Identity{}, fail(ReasonWebhookUnavailable, "while decoding webhook response: %w", err)
	}
	if !ans.Allowed {
		return Identity{}, &Error{Reason: ReasonDenied, Err: errors.New(denyReason(ans.Reason))}
	}
	if ans.UserID == "" {
		return Identity{}, fail(ReasonWebhookUnavailable, "webhook allowed the token without a userID")
	}
	id := Identity{UserID: ans.UserID, Groups: ans.Groups}
	if ans.ExpiresAt > 0 {
		id.ExpiresAt = time.Unix(ans.ExpiresAt, 0)
	}
	return id, nil
}

// denyReason makes the webhook's reason safe to forward to the client: printable, bounded.
func denyReason(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if len(s) > maxDenyReasonBytes {
		s = strings.ToValidUTF8(s[:maxDenyReasonBytes], "")
	}
	if s == "" {
		return "denied by the auth webhook"
	}
	return s
}
