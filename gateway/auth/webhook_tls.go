package auth

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/reload"
)

// parseCABundle reads a PEM bundle of CA certificates (auth.webhook.caFile). Text between
// blocks is allowed (bundles often carry comments); any other block type (a private key
// pasted in by mistake) or a certificate that does not parse is an error, and so is a file
// without a certificate.
func parseCABundle(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, want only CERTIFICATE blocks", n+1, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return pool, nil
}

// webhookClient is the webhook's HTTP client: Go's default transport (proxy from the
// environment, connection reuse) with TLS 1.2 or newer, trusting roots (nil: the system
// roots). The per-call deadline comes from the request context, not the client.
func webhookClient(roots *x509.CertPool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	return &http.Client{Transport: t, CheckRedirect: refuseRedirect}
}

// refuseRedirect keeps a redirect from the webhook as its answer (a bad_status failure)
// instead of following it: the token goes only to the configured URL, never to wherever a
// compromised or misconfigured webhook points (another host, or plain http).
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// caClients builds a new client for each version of the CA file, checked at most once per
// keyCheckInterval. A file that fails to load keeps the previous client in service. A
// replaced client is no longer used; its idle connections close after the transport's idle
// timeout.
func caClients(path string, now func() time.Time) (*reload.Files[*http.Client], error) {
	return reload.New([]string{path}, func(data [][]byte) (*http.Client, error) {
		pool, err := parseCABundle(data[0])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return webhookClient(pool), nil
	}, reload.Options[*http.Client]{Now: now, Interval: keyCheckInterval, OnReload: func(_ *http.Client, err error) {
		if err != nil {
			slog.Warn("auth: webhook CA file reload failed, keeping the previous bundle", "path", path, "err", err)
		}
	}})
}
