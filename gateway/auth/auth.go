// Package auth verifies the token a client presents in its HANDSHAKE and turns it into an
// Identity (user id and group tags).
//
// Two verifiers exist, chosen by config.Auth (exactly one is configured):
//
//   - JWT (NewJWT): local verification of HS256 and/or RS256 tokens against key files mounted
//     from a Kubernetes Secret: single keys and a JSON Web Key Set selected by the token's
//     kid. The files are re-read when they change, so keys rotate without a restart, and a
//     key set holding the old and the new key keeps both valid during the rotation.
//   - Webhook (NewWebhook): a POST to an HTTP endpoint owned by the application, for tokens
//     the gateway cannot verify itself (opaque sessions, revocation lists, device checks).
//     Over https it trusts the system roots, or only the CA bundle of auth.webhook.caFile
//     (re-read when it changes).
//
// Every failure is an *Error carrying one of the Reason constants. The reason strings are
// stable and lower_snake: they are sent to the client in ERROR frames and used as metric
// labels, so changing one is a breaking change.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// Identity is who a verified token belongs to.
type Identity struct {
	// UserID keys the user's downlink records; never empty on success.
	UserID string
	// Groups are the tags used by group-targeted pushes; may be empty.
	Groups []string
	// ExpiresAt is when the token stops being valid (a JWT's exp, the webhook's expiresAt);
	// zero when it does not expire. The gateway asks for a refresh ahead of it.
	ExpiresAt time.Time
}

// Request is what the handshake gives a verifier.
type Request struct {
	Token string
	// DeviceID and ClientAddress are passed to the webhook for its own policy; the JWT
	// verifier ignores them.
	DeviceID      string
	ClientAddress string
}

// Verifier checks a handshake token. Implementations are safe for concurrent use. Errors are
// always *Error.
type Verifier interface {
	Verify(ctx context.Context, req Request) (Identity, error)
}

// Local reports whether v answers without I/O and ignores the context it is given (the JWT
// verifier), so a caller need not make a context with a deadline (a timer) for each call.
func Local(v Verifier) bool {
	_, ok := v.(interface{ local() })
	return ok
}

// Failure reasons. Stable: used in ERROR frames, logs and metric labels.
const (
	// ReasonMissingToken: the handshake carried no token.
	ReasonMissingToken = "missing_token"
	// ReasonInvalidToken: malformed, bad signature, wrong alg/issuer/audience, not yet valid,
	// or missing/ill-typed identity claims.
	ReasonInvalidToken = "invalid_token"
	// ReasonExpiredToken: past exp (plus leeway). Separate so clients know to refresh.
	ReasonExpiredToken = "expired_token"
	// ReasonUnknownKey: the token's kid names no configured key (removed after a rotation,
	// or never known). Separate so a rotation that dropped a key too early shows at once.
	ReasonUnknownKey = "unknown_key"
	// ReasonDenied: the webhook answered allowed=false.
	ReasonDenied = "denied"
	// ReasonWebhookUnavailable: the webhook could not give an answer (transport error,
	// timeout, non-200, malformed reply). Not the client's fault; it may retry.
	ReasonWebhookUnavailable = "webhook_unavailable"
)

// Reasons lists every reason, e.g. to initialise metric label values at start-up.
func Reasons() []string {
	return []string{ReasonMissingToken, ReasonInvalidToken, ReasonExpiredToken, ReasonUnknownKey, ReasonDenied, ReasonWebhookUnavailable}
}

// Error is a failed verification.
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
	// Err is the cause. For ReasonDenied it is the webhook's own explanation, which is meant
	// for the client.
	Err error
	// Cause is one of the WebhookCause constants for ReasonWebhookUnavailable, else "". It
	// is for the operator (metric, log), never sent to the client.
	Cause string
}

func (e *Error) Error() string {
	s := "auth: " + e.Reason
	if e.Cause != "" {
		s += " (" + e.Cause + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrExpiredToken) and friends match any *Error with that reason,
// whatever its cause.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Err == nil && t.Reason == e.Reason
}

// Sentinels for errors.Is; match on reason only.
var (
	ErrMissingToken       = &Error{Reason: ReasonMissingToken}
	ErrInvalidToken       = &Error{Reason: ReasonInvalidToken}
	ErrExpiredToken       = &Error{Reason: ReasonExpiredToken}
	ErrUnknownKey         = &Error{Reason: ReasonUnknownKey}
	ErrDenied             = &Error{Reason: ReasonDenied}
	ErrWebhookUnavailable = &Error{Reason: ReasonWebhookUnavailable}
)

// ReasonOf returns the reason of an auth error anywhere in err's chain, or "" if there is none.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func fail(reason string, format string, args ...any) *Error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Options are the verifiers' dependencies beyond the configuration; the zero value is usable.
type Options struct {
	// Logger receives the webhook's failures (each cause at most once a minute). Default
	// slog.Default().
	Logger *slog.Logger
	// WebhookFailure, if set, is called with the cause of every failed webhook call
	// (ReasonWebhookUnavailable): the gateway counts them in a metric.
	WebhookFailure func(cause string)
	// WebhookClient replaces the webhook's own HTTP client (tests). It is used as it is, so
	// it cannot be combined with auth.webhook.caFile.
	WebhookClient *http.Client
}

// New builds the verifier selected by cfg: JWT or webhook, exactly one. Files it names (keys,
// the webhook's CA bundle) are read now: a missing or malformed file is an error.
func New(cfg config.Auth, o Options) (Verifier, error) {
	switch {
	case cfg.JWT != nil && cfg.Webhook != nil:
		return nil, errors.New("auth: both jwt and webhook are configured, want exactly one")
	case cfg.JWT != nil:
		return NewJWT(*cfg.JWT)
	case cfg.Webhook != nil:
		if cfg.Webhook.URL == "" {
			return nil, errors.New("auth: webhook url is empty")
		}
		return NewWebhook(*cfg.Webhook, o)
	default:
		return nil, errors.New("auth: neither jwt nor webhook is configured")
	}
}
