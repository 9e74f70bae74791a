package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Causes of ReasonWebhookUnavailable. The client is told only webhook_unavailable (retry
// later: not its fault, and the gateway's TLS set-up is none of its business); the operator
// gets the cause in tcpgw_auth_webhook_failures_total{cause} and in the gateway's log.
// Stable: metric label values.
const (
	// WebhookCauseTLS: the TLS handshake with the webhook failed: its certificate does not
	// chain to a trusted CA (auth.webhook.caFile, or the system roots), has expired, does
	// not name the URL's host, or the server does not speak TLS.
	WebhookCauseTLS = "tls_failed"
	// WebhookCauseTimeout: no answer within auth.webhook.timeout (or the handshake deadline).
	WebhookCauseTimeout = "timeout"
	// WebhookCauseUnreachable: no connection (refused, reset, no route, DNS).
	WebhookCauseUnreachable = "unreachable"
	// WebhookCauseStatus: an HTTP status other than 200.
	WebhookCauseStatus = "bad_status"
	// WebhookCauseResponse: a 200 with a body that is malformed, too large, or allows the
	// token without a userID.
	WebhookCauseResponse = "bad_response"
	// WebhookCauseCanceled: the caller gave up first (the client went away).
	WebhookCauseCanceled = "canceled"
)

// WebhookCauses lists every cause, e.g. to initialise metric label values at start-up.
func WebhookCauses() []string {
	return []string{WebhookCauseTLS, WebhookCauseTimeout, WebhookCauseUnreachable, WebhookCauseStatus, WebhookCauseResponse, WebhookCauseCanceled}
}

// CauseOf returns the webhook failure cause of an auth error anywhere in err's chain, or ""
// if there is none (another reason, or no auth error).
func CauseOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Cause
	}
	return ""
}

// transportCause classifies an error of the HTTP call (connect, TLS, write, read).
func transportCause(err error) string {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		record   tls.RecordHeaderError
		netErr   net.Error
		opErr    *net.OpError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return WebhookCauseCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return WebhookCauseTimeout
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &invalid),
		errors.As(err, &hostname), errors.As(err, &record):
		return WebhookCauseTLS
	// crypto/tls reports an alert from the server (no common TLS version, a client
	// certificate it wanted) as a net.OpError with this Op.
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		return WebhookCauseTLS
	// net/http reports a server that answers in plain HTTP with this instead of the
	// tls.RecordHeaderError.
	case errors.Is(err, http.ErrSchemeMismatch):
		return WebhookCauseTLS
	default:
		return WebhookCauseUnreachable
	}
}

// failureLogInterval: a failing webhook fails every handshake, which anyone can start, so
// each cause is logged at most once per interval, with the number of failures it stands for.
const failureLogInterval = time.Minute

// failureLog logs webhook failures at a bounded rate.
type failureLog struct {
	log *slog.Logger
	now func() time.Time

	mu sync.Mutex
	// guarded by mu
	last   map[string]time.Time // cause → time of its last log line
	missed map[string]int       // cause → failures not logged since then
}

func newFailureLog(log *slog.Logger, now func() time.Time) *failureLog {
	if log == nil {
		log = slog.Default()
	}
	return &failureLog{log: log, now: now, last: map[string]time.Time{}, missed: map[string]int{}}
}

func (l *failureLog) record(err *Error) {
	l.mu.Lock()
	now := l.now()
	if last, ok := l.last[err.Cause]; ok && now.Sub(last) < failureLogInterval {
		l.missed[err.Cause]++
		l.mu.Unlock()
		return
	}
	l.last[err.Cause] = now
	missed := l.missed[err.Cause]
	l.missed[err.Cause] = 0
	l.mu.Unlock()
	l.log.Warn("auth webhook failed", "cause", err.Cause, "err", err.Err, "failuresNotLogged", missed)
}
