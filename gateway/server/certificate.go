package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/reload"
)

// newTLSConfig is the clients listener's TLS configuration (listen.tls): the certificate is
// served from its files, re-read when they change, so a rotated Secret applies to new
// connections without a restart while live ones keep their session. Go's defaults stand for
// the rest: cipher suites with forward secrecy (AEAD preferred), session tickets with keys
// rotating in memory (a client that keeps a session cache resumes on the same pod without a
// full handshake).
func newTLSConfig(cfg config.ListenTLS, m *metrics.Gateway, log *slog.Logger, now func() time.Time) (*tls.Config, error) {
	cert, err := newCertificate(cfg, m, log, now)
	if err != nil {
		return nil, err
	}
	minVersion := uint16(tls.VersionTLS12)
	if cfg.MinVersion == config.TLS13 {
		minVersion = tls.VersionTLS13
	}
	return &tls.Config{
		MinVersion:     minVersion,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert.Get(), nil },
	}, nil
}

// newCertificate loads the certificate and key, and reloads them when the files change. A
// pair that fails to load (a certificate without its key mid-rotation, garbage, a key that
// does not match) keeps the previous pair in service: logged and counted in
// tcpgw_tls_certificate_reloads_total{result="failed"}.
func newCertificate(cfg config.ListenTLS, m *metrics.Gateway, log *slog.Logger, now func() time.Time) (*reload.Files[*tls.Certificate], error) {
	notAfter := m.CertNotAfter.WithLabelValues(cfg.CertFile)
	files, err := reload.New([]string{cfg.CertFile, cfg.KeyFile}, parseKeyPair, reload.Options[*tls.Certificate]{
		Now: now,
		OnReload: func(cert *tls.Certificate, err error) {
			if err != nil {
				m.CertReloads.WithLabelValues("failed").Inc()
				log.Error("TLS certificate reload failed, serving the previous one", "cert", cfg.CertFile, "key", cfg.KeyFile, "err", err)
				return
			}
			m.CertReloads.WithLabelValues("ok").Inc()
			notAfter.Set(float64(cert.Leaf.NotAfter.Unix()))
			log.Info("TLS certificate reloaded", "cert", cfg.CertFile, "serial", cert.Leaf.SerialNumber.String(),
				"subject", cert.Leaf.Subject.String(), "notAfter", cert.Leaf.NotAfter)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("while loading listen.tls: %w", err)
	}
	leaf := files.Get().Leaf
	notAfter.Set(float64(leaf.NotAfter.Unix()))
	log.Info("TLS to clients", "cert", cfg.CertFile, "serial", leaf.SerialNumber.String(), "subject", leaf.Subject.String(),
		"notAfter", leaf.NotAfter, "minVersion", cfg.MinVersion)
	return files, nil
}

// parseKeyPair parses the PEM certificate chain and key; the leaf is parsed too (Leaf), for
// its expiry.
func parseKeyPair(data [][]byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(data[0], data[1])
	if err != nil {
		return nil, err
	}
	if cert.Leaf == nil {
		return nil, fmt.Errorf("no leaf certificate")
	}
	return &cert, nil
}
