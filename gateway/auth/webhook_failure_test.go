package auth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
)

func TestTransportCause(t *testing.T) {
	wrap := func(err error) error { return &url.Error{Op: "Post", URL: "https://auth/verify", Err: err} }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"deadline", wrap(context.DeadlineExceeded), WebhookCauseTimeout},
		{"caller cancel", wrap(context.Canceled), WebhookCauseCanceled},
		{"unknown CA", wrap(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), WebhookCauseTLS},
		{"expired", wrap(x509.CertificateInvalidError{Reason: x509.Expired}), WebhookCauseTLS},
		{"wrong name", wrap(x509.HostnameError{Host: "a"}), WebhookCauseTLS},
		{"not TLS", wrap(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), WebhookCauseTLS},
		{"server alert", wrap(&net.OpError{Op: "remote error", Err: errors.New("tls: protocol version not supported")}), WebhookCauseTLS},
		{"plain HTTP answer", wrap(http.ErrSchemeMismatch), WebhookCauseTLS},
		{"refused", wrap(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), WebhookCauseUnreachable},
		{"reset", wrap(fmt.Errorf("read: %w", syscall.ECONNRESET)), WebhookCauseUnreachable},
	}
	for _, tt := range tests {
		if got := transportCause(tt.err); got != tt.want {
			t.Errorf("%s: transportCause(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}

// TestFailureLogIsBounded: a failing webhook fails every handshake, which anyone can start;
// each cause is logged once per interval, with the count of failures in between.
func TestFailureLogIsBounded(t *testing.T) {
	var buf bytes.Buffer
	clock := newFakeClock()
	l := newFailureLog(slog.New(slog.NewTextHandler(&buf, nil)), clock.Now)
	tlsErr := &Error{Reason: ReasonWebhookUnavailable, Cause: WebhookCauseTLS, Err: errors.New("x509: certificate signed by unknown authority")}
	timeoutErr := &Error{Reason: ReasonWebhookUnavailable, Cause: WebhookCauseTimeout, Err: context.DeadlineExceeded}

	for range 100 {
		l.record(tlsErr)
	}
	l.record(timeoutErr) // another cause has its own allowance
	clock.Advance(failureLogInterval)
	l.record(tlsErr)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d log lines, want 3:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{
		`cause=tls_failed err="x509: certificate signed by unknown authority" failuresNotLogged=0`,
		`cause=timeout`,
		`cause=tls_failed err="x509: certificate signed by unknown authority" failuresNotLogged=99`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %s, want it to contain %s", i, lines[i], want)
		}
	}
}
