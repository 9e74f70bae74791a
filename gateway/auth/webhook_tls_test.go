package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/test/tlstest"
)

// webhookCert issues a server certificate of ca for l (by default for loopback, valid now).
func webhookCert(t *testing.T, ca *tlstest.CA, l tlstest.Leaf) tls.Certificate {
	t.Helper()
	cert, err := ca.MustIssue(t, l).TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// tlsWebhook is an https webhook on loopback serving cert and allowing every token.
func tlsWebhook(t *testing.T, cert tls.Certificate, mutate ...func(*tls.Config)) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(reply(200, `{"allowed":true,"userID":"user-tls"}`))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	for _, m := range mutate {
		m(srv.TLS)
	}
	// The handshake failures the tests cause are expected: keep them out of the test log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// writeAtomically replaces path by a new file, as the kubelet's symlink swap gives a new
// file behind the path.
func writeAtomically(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	writeFile(t, tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// causes records the WebhookFailure calls.
type causes struct {
	mu  sync.Mutex
	got []string
}

func (c *causes) add(cause string) { c.mu.Lock(); c.got = append(c.got, cause); c.mu.Unlock() }
func (c *causes) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// TestWebhookCAFile: with auth.webhook.caFile the webhook's certificate must chain to that
// bundle: a certificate of the bundle's CA is accepted; one of another CA, an expired one,
// one for another name, a server without TLS 1.2 and a plain-HTTP server are each refused as
// webhook_unavailable with cause tls_failed, and reported to WebhookFailure.
func TestWebhookCAFile(t *testing.T) {
	trusted := tlstest.MustCA(t, "trusted CA")
	other := tlstest.MustCA(t, "unrelated CA")
	caFile := writeFile(t, tempPath(t, "ca.crt"), trusted.PEM)
	past := time.Now().Add(-48 * time.Hour)

	plainHTTP := httptest.NewServer(reply(200, `{"allowed":true,"userID":"u"}`))
	t.Cleanup(plainHTTP.Close)

	tests := []struct {
		name    string
		url     string
		wantErr any // a pointer to the x509 error type expected in the chain, or nil
	}{
		{name: "trusted CA", url: tlsWebhook(t, webhookCert(t, trusted, tlstest.Leaf{})).URL},
		{name: "unknown CA", url: tlsWebhook(t, webhookCert(t, other, tlstest.Leaf{})).URL, wantErr: &x509.UnknownAuthorityError{}},
		{name: "expired certificate", url: tlsWebhook(t, webhookCert(t, trusted, tlstest.Leaf{NotBefore: past, NotAfter: past.Add(time.Hour)})).URL, wantErr: &x509.CertificateInvalidError{}},
		{name: "wrong name", url: tlsWebhook(t, webhookCert(t, trusted, tlstest.Leaf{NotBefore: past, NotAfter: time.Now().Add(time.Hour), Hosts: []string{"auth.example.com"}})).URL, wantErr: &x509.HostnameError{}},
		{name: "server older than TLS 1.2", url: tlsWebhook(t, webhookCert(t, trusted, tlstest.Leaf{}), func(c *tls.Config) {
			c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		}).URL},
		{name: "plain HTTP behind an https URL", url: strings.Replace(plainHTTP.URL, "http://", "https://", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen causes
			v := mustWebhook(t, config.WebhookAuth{URL: tt.url, CAFile: caFile}, Options{WebhookFailure: seen.add})
			id, err := v.Verify(context.Background(), testRequest)
			if tt.name == "trusted CA" {
				if err != nil || id.UserID != "user-tls" {
					t.Fatalf("Verify = %+v, %v; want user-tls", id, err)
				}
				if got := seen.list(); len(got) != 0 {
					t.Errorf("WebhookFailure called with %v on success", got)
				}
				return
			}
			wantReason(t, err, ReasonWebhookUnavailable)
			wantCause(t, err, WebhookCauseTLS)
			if got := seen.list(); len(got) != 1 || got[0] != WebhookCauseTLS {
				t.Errorf("WebhookFailure calls = %v, want [%s]", got, WebhookCauseTLS)
			}
			switch want := tt.wantErr.(type) {
			case *x509.UnknownAuthorityError:
				if !errors.As(err, want) {
					t.Errorf("err = %v, want an x509.UnknownAuthorityError", err)
				}
			case *x509.CertificateInvalidError:
				if !errors.As(err, want) || want.Reason != x509.Expired {
					t.Errorf("err = %v, want an x509 Expired error", err)
				}
			case *x509.HostnameError:
				if !errors.As(err, want) {
					t.Errorf("err = %v, want an x509.HostnameError", err)
				}
			}
		})
	}
}

// TestWebhookCAFileReplacesSystemRoots: without caFile the system roots decide (a private CA
// is refused); with it, that CA is trusted. (That the system roots are then ignored is
// TestWebhookCAFile's "unknown CA" case: only the bundle is in the pool.)
func TestWebhookCAFileReplacesSystemRoots(t *testing.T) {
	ca := tlstest.MustCA(t, "test CA")
	srv := tlsWebhook(t, webhookCert(t, ca, tlstest.Leaf{}))

	_, err := mustWebhook(t, config.WebhookAuth{URL: srv.URL}, Options{}).Verify(context.Background(), testRequest)
	wantCause(t, err, WebhookCauseTLS)

	caFile := writeFile(t, tempPath(t, "ca.crt"), ca.PEM)
	if _, err := mustWebhook(t, config.WebhookAuth{URL: srv.URL, CAFile: caFile}, Options{}).Verify(context.Background(), testRequest); err != nil {
		t.Fatalf("with the CA in caFile: %v", err)
	}
}

// TestWebhookCAFileRotation: the CA file is re-read when it changes. A bundle of the wrong
// CA refuses the webhook; once the file holds the right CA (a kubelet-style replacement),
// the next call after the check interval succeeds; a broken replacement keeps the last good
// bundle in service.
func TestWebhookCAFileRotation(t *testing.T) {
	oldCA, newCA := tlstest.MustCA(t, "old CA"), tlstest.MustCA(t, "new CA")
	srv := tlsWebhook(t, webhookCert(t, newCA, tlstest.Leaf{}))
	caFile := writeFile(t, tempPath(t, "ca.crt"), oldCA.PEM)
	clock := newFakeClock()
	v, err := newWebhook(config.WebhookAuth{URL: srv.URL, CAFile: caFile}, Options{}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	verify := func() error {
		_, err := v.Verify(context.Background(), testRequest)
		return err
	}

	if err := verify(); CauseOf(err) != WebhookCauseTLS {
		t.Fatalf("webhook signed by a CA not in the bundle: err = %v, want cause tls_failed", err)
	}

	// A bundle with both CAs, as during a CA rotation.
	writeAtomically(t, caFile, append(append([]byte{}, oldCA.PEM...), newCA.PEM...))
	if err := verify(); CauseOf(err) != WebhookCauseTLS {
		t.Fatalf("within the check interval the old bundle stays: err = %v, want cause tls_failed", err)
	}
	clock.Advance(keyCheckInterval)
	if err := verify(); err != nil {
		t.Fatalf("after the rotation: %v", err)
	}

	writeAtomically(t, caFile, []byte("not a certificate"))
	clock.Advance(keyCheckInterval)
	if err := verify(); err != nil {
		t.Fatalf("a broken CA file must keep the last good bundle: %v", err)
	}
}

// TestWebhookCAFileChecksAtStart: a CA file that is missing, holds no certificate, holds
// something else than certificates or a certificate that does not parse is a configuration
// error when the verifier is built, not a failure of every handshake later.
func TestWebhookCAFileChecksAtStart(t *testing.T) {
	ca := tlstest.MustCA(t, "test CA")
	keyPEM := ca.MustIssue(t, tlstest.Leaf{}).KeyPEM
	dir := t.TempDir()
	tests := []struct {
		name, wantErr string
		file          string
		o             Options
	}{
		{name: "missing", file: filepath.Join(dir, "absent.crt"), wantErr: "no such file"},
		{name: "empty", file: writeFile(t, filepath.Join(dir, "empty.crt"), nil), wantErr: "no PEM CERTIFICATE block"},
		{name: "not PEM", file: writeFile(t, filepath.Join(dir, "text.crt"), []byte("hello")), wantErr: "no PEM CERTIFICATE block"},
		{name: "a private key too", file: writeFile(t, filepath.Join(dir, "key.crt"), append(append([]byte{}, ca.PEM...), keyPEM...)), wantErr: `PEM block 2 is a "PRIVATE KEY"`},
		{name: "broken certificate", file: writeFile(t, filepath.Join(dir, "bad.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})), wantErr: "PEM block 1"},
		{name: "with a custom client", file: writeFile(t, filepath.Join(dir, "ok.crt"), ca.PEM), o: Options{WebhookClient: &http.Client{}}, wantErr: "cannot use caFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewWebhook(config.WebhookAuth{URL: "https://127.0.0.1:1/verify", CAFile: tt.file}, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
	// Through New, as the gateway builds it.
	_, err := New(config.Auth{Webhook: &config.WebhookAuth{URL: "https://a/verify", CAFile: filepath.Join(dir, "absent.crt")}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "caFile") {
		t.Fatalf("New with a missing caFile: err = %v", err)
	}
	// Comments around the blocks, as in many bundles, are fine.
	withText := writeFile(t, filepath.Join(dir, "bundle.crt"), append([]byte("# test CA\n"), ca.PEM...))
	if _, err := NewWebhook(config.WebhookAuth{URL: "https://a/verify", CAFile: withText}, Options{}); err != nil {
		t.Fatalf("bundle with comments: %v", err)
	}
}
