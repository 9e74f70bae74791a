package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

var testRequest = Request{Token: "tok-123", DeviceID: "dev-1", ClientAddress: "127.0.0.1:5555"}

// checkedHandler asserts the request shape the webhook contract promises, then delegates.
func checkedHandler(t *testing.T, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method = %s, want POST", r.Method)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("decoding webhook request: %v", err)
		}
		want := map[string]any{"token": "tok-123", "deviceID": "dev-1", "clientAddress": "127.0.0.1:5555"}
		if !reflect.DeepEqual(body, want) {
			t.Errorf("webhook request body = %v, want %v", body, want)
		}
		next(w, r)
	}
}

// mustWebhook is NewWebhook for configurations that must be accepted.
func mustWebhook(t *testing.T, cfg config.WebhookAuth, o Options) Verifier {
	t.Helper()
	v, err := NewWebhook(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestWebhookVerify(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		want      Identity
		reason    string
		cause     string // for ReasonWebhookUnavailable
		errSubstr string
	}{
		{
			name:    "allowed",
			handler: reply(200, `{"allowed":true,"userID":"user-7","groups":["beta"],"extra":"ignored"}`),
			want:    Identity{UserID: "user-7", Groups: []string{"beta"}},
		},
		{
			name:    "allowed with an expiry",
			handler: reply(200, `{"allowed":true,"userID":"user-7","expiresAt":1796400000}`),
			want:    Identity{UserID: "user-7", ExpiresAt: time.Unix(1796400000, 0)},
		},
		{
			name:    "allowed without groups",
			handler: reply(200, `{"allowed":true,"userID":"user-7"}`),
			want:    Identity{UserID: "user-7"},
		},
		{
			name:      "denied with reason",
			handler:   reply(200, `{"allowed":false,"reason":"device banned"}`),
			reason:    ReasonDenied,
			errSubstr: "device banned",
		},
		{
			name:      "denied without reason",
			handler:   reply(200, `{"allowed":false}`),
			reason:    ReasonDenied,
			errSubstr: "denied by the auth webhook",
		},
		{
			name:      "denied reason sanitised",
			handler:   reply(200, `{"allowed":false,"reason":"bad\u0000\nthing`+strings.Repeat("x", 1000)+`"}`),
			reason:    ReasonDenied,
			errSubstr: "badthing" + strings.Repeat("x", maxDenyReasonBytes-len("badthing")),
		},
		{
			name:      "server error",
			handler:   reply(500, `{"allowed":true,"userID":"user-7"}`),
			reason:    ReasonWebhookUnavailable,
			cause:     WebhookCauseStatus,
			errSubstr: "500",
		},
		{
			name:      "unauthorized status is not a denial",
			handler:   reply(401, `{"allowed":false}`),
			reason:    ReasonWebhookUnavailable,
			cause:     WebhookCauseStatus,
			errSubstr: "401",
		},
		{
			name:      "malformed JSON",
			handler:   reply(200, `{"allowed":tru`),
			reason:    ReasonWebhookUnavailable,
			cause:     WebhookCauseResponse,
			errSubstr: "decoding",
		},
		{
			name:      "allowed without user id",
			handler:   reply(200, `{"allowed":true}`),
			reason:    ReasonWebhookUnavailable,
			cause:     WebhookCauseResponse,
			errSubstr: "without a userID",
		},
		{
			name:      "oversized response",
			handler:   reply(200, `{"allowed":true,"userID":"u","pad":"`+strings.Repeat("x", maxWebhookResponseBytes)+`"}`),
			reason:    ReasonWebhookUnavailable,
			cause:     WebhookCauseResponse,
			errSubstr: "exceeds",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(checkedHandler(t, tt.handler))
			t.Cleanup(srv.Close)
			v := mustWebhook(t, config.WebhookAuth{URL: srv.URL + "/verify"}, Options{WebhookClient: srv.Client()})

			got, err := v.Verify(context.Background(), testRequest)
			wantReason(t, err, tt.reason)
			if got := CauseOf(err); got != tt.cause {
				t.Errorf("cause = %q, want %q", got, tt.cause)
			}
			if tt.errSubstr != "" && !strings.Contains(err.Error(), tt.errSubstr) {
				t.Errorf("error %q does not contain %q", err, tt.errSubstr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("identity = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestWebhookTimeout: the handler never answers; it returns only when the gateway gives up
// and the request context is cancelled.
func TestWebhookTimeout(t *testing.T) {
	released := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		// The server only watches for the client going away once the body is consumed.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
		close(released)
	}))
	t.Cleanup(srv.Close)
	v := mustWebhook(t, config.WebhookAuth{URL: srv.URL, Timeout: config.Duration{Duration: 50 * time.Millisecond}}, Options{})

	_, err := v.Verify(context.Background(), testRequest)
	wantReason(t, err, ReasonWebhookUnavailable)
	wantCause(t, err, WebhookCauseTimeout)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook handler was never released: the call was not cancelled")
	}
}

func TestWebhookCallerCancel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	v := mustWebhook(t, config.WebhookAuth{URL: srv.URL}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Verify(ctx, testRequest)
	wantReason(t, err, ReasonWebhookUnavailable)
	wantCause(t, err, WebhookCauseCanceled)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want it to wrap context.Canceled", err)
	}
}

func TestWebhookUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens on that 127.0.0.1 port any more
	v := mustWebhook(t, config.WebhookAuth{URL: url}, Options{})
	_, err := v.Verify(context.Background(), testRequest)
	wantReason(t, err, ReasonWebhookUnavailable)
	wantCause(t, err, WebhookCauseUnreachable)
}

func wantCause(t *testing.T, err error, cause string) {
	t.Helper()
	if got := CauseOf(err); got != cause {
		t.Errorf("cause of %v = %q, want %q", err, got, cause)
	}
}

func TestWebhookMissingTokenSkipsCall(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		_, _ = io.WriteString(w, `{"allowed":true,"userID":"u"}`)
	}))
	t.Cleanup(srv.Close)
	v := mustWebhook(t, config.WebhookAuth{URL: srv.URL}, Options{WebhookClient: srv.Client()})
	_, err := v.Verify(context.Background(), Request{DeviceID: "d"})
	wantReason(t, err, ReasonMissingToken)
	if n := calls.Load(); n != 0 {
		t.Errorf("webhook called %d times for an empty token", n)
	}
}

func TestNewSelectsVerifier(t *testing.T) {
	secret := randomSecret(t)
	hsPath := writeFile(t, tempPath(t, "hs"), secret)
	srv := httptest.NewServer(reply(200, `{"allowed":true,"userID":"from-webhook"}`))
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		cfg     config.Auth
		wantErr string
		check   func(t *testing.T, v Verifier)
	}{
		{name: "neither", cfg: config.Auth{}, wantErr: "neither"},
		{name: "both", cfg: config.Auth{JWT: &config.JWTAuth{HS256SecretFile: hsPath}, Webhook: &config.WebhookAuth{URL: srv.URL}}, wantErr: "both"},
		{name: "webhook without url", cfg: config.Auth{Webhook: &config.WebhookAuth{}}, wantErr: "url is empty"},
		{name: "jwt", cfg: config.Auth{JWT: &config.JWTAuth{HS256SecretFile: hsPath, SkipIssuerCheck: true, SkipAudienceCheck: true}}, check: func(t *testing.T, v Verifier) {
			if _, ok := v.(*jwtVerifier); !ok {
				t.Errorf("got %T, want *jwtVerifier", v)
			}
		}},
		{name: "webhook", cfg: config.Auth{Webhook: &config.WebhookAuth{URL: srv.URL}}, check: func(t *testing.T, v Verifier) {
			id, err := v.Verify(context.Background(), testRequest)
			if err != nil || id.UserID != "from-webhook" {
				t.Errorf("Verify = %+v, %v", id, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.cfg, Options{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, v)
		})
	}
}

// TestWebhookRedirectNotFollowed: a webhook answering with a redirect does not get the token
// sent on to the redirect's target (which would allow it here); the answer is a bad status.
func TestWebhookRedirectNotFollowed(t *testing.T) {
	var followed atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
		reply(200, `{"allowed":true,"userID":"mallory"}`)(w, r)
	}))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()

	_, err := mustWebhook(t, config.WebhookAuth{URL: srv.URL}, Options{}).Verify(context.Background(), testRequest)
	var ae *Error
	if !errors.As(err, &ae) || ae.Reason != ReasonWebhookUnavailable || ae.Cause != WebhookCauseStatus {
		t.Fatalf("err = %v, want webhook_unavailable caused by %s", err, WebhookCauseStatus)
	}
	if n := followed.Load(); n != 0 {
		t.Fatalf("the redirect target was called %d times; the token must not leave for it", n)
	}
}
