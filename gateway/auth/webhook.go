package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	client  func() *http.Client // the current client: fixed, or rebuilt when the CA file changes
	failed  func(cause string)  // may be nil
	log     *failureLog
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
// (default 2s). Its HTTP client speaks TLS 1.2 or newer and trusts the system roots, or, with
// cfg.CAFile, only the certificates of that PEM bundle, re-read when the file changes (an
// unreadable or malformed file is an error now; later, the previous bundle stays in use).
// o.WebhookClient, when set, is used instead (its own Timeout is left alone: the per-call
// deadline comes from the context).
//
// A 200 with allowed=true is an Identity; allowed=false is ReasonDenied with the webhook's
// reason; anything else is ReasonWebhookUnavailable with a WebhookCause (TLS failure,
// timeout, unreachable, other status, malformed or oversized body, allowed without userID).
func NewWebhook(cfg config.WebhookAuth, o Options) (Verifier, error) {
	w, err := newWebhook(cfg, o, time.Now)
	if err != nil {
		return nil, err // not a nil *webhookVerifier in a non-nil Verifier
	}
	return w, nil
}

func newWebhook(cfg config.WebhookAuth, o Options, now func() time.Time) (*webhookVerifier, error) {
	cfg.Default()
	w := &webhookVerifier{url: cfg.URL, timeout: cfg.Timeout.Duration, failed: o.WebhookFailure, log: newFailureLog(o.Logger, now)}
	switch {
	case o.WebhookClient != nil && cfg.CAFile != "":
		return nil, errors.New("auth: webhook: a custom HTTP client cannot use caFile")
	case o.WebhookClient != nil:
		w.client = func() *http.Client { return o.WebhookClient }
	case cfg.CAFile != "":
		clients, err := caClients(cfg.CAFile, now)
		if err != nil {
			return nil, fmt.Errorf("auth: webhook caFile: %w", err)
		}
		w.client = clients.Get
	default:
		c := webhookClient(nil)
		w.client = func() *http.Client { return c }
	}
	return w, nil
}

// Verify asks the webhook. Empty tokens are rejected without a call.
func (w *webhookVerifier) Verify(ctx context.Context, req Request) (Identity, error) {
	if req.Token == "" {
		return Identity{}, fail(ReasonMissingToken, "handshake has no token")
	}
	ans, err := w.call(ctx, req)
	if err != nil {
		w.log.record(err)
		if w.failed != nil {
			w.failed(err.Cause)
		}
		return Identity{}, err
	}
	if !ans.Allowed {
		return Identity{}, &Error{Reason: ReasonDenied, Err: errors.New(denyReason(ans.Reason))}
	}
	id := Identity{UserID: ans.UserID, Groups: ans.Groups}
	if ans.ExpiresAt > 0 {
		id.ExpiresAt = time.Unix(ans.ExpiresAt, 0)
	}
	return id, nil
}

// call POSTs the request and decodes the answer; every error is ReasonWebhookUnavailable
// with its cause.
func (w *webhookVerifier) call(ctx context.Context, req Request) (webhookResponse, *Error) {
	unavailable := func(cause, format string, args ...any) (webhookResponse, *Error) {
		return webhookResponse{}, &Error{Reason: ReasonWebhookUnavailable, Cause: cause, Err: fmt.Errorf(format, args...)}
	}
	body, _ := json.Marshal(webhookRequest(req)) // three strings: cannot fail
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return unavailable(WebhookCauseUnreachable, "while building request: %w", err)
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/json")

	resp, err := w.client().Do(httpReq)
	if err != nil {
		return unavailable(transportCause(err), "while calling webhook: %w", err)
	}
	defer resp.Body.Close()
	// Read one byte past the limit to tell "exactly at the limit" from "too large".
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxWebhookResponseBytes+1))
	if err != nil {
		return unavailable(transportCause(err), "while reading webhook response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return unavailable(WebhookCauseStatus, "webhook answered %s", resp.Status)
	}
	if len(data) > maxWebhookResponseBytes {
		return unavailable(WebhookCauseResponse, "webhook response exceeds %d bytes", maxWebhookResponseBytes)
	}
	var ans webhookResponse
	if err := json.Unmarshal(data, &ans); err != nil {
		return unavailable(WebhookCauseResponse, "while decoding webhook response: %w", err)
	}
	if ans.Allowed && ans.UserID == "" {
		return unavailable(WebhookCauseResponse, "webhook allowed the token without a userID")
	}
	return ans, nil
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
