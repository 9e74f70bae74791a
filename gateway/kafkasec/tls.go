package kafkasec

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// TLSConfig builds the client TLS configuration for the brokers from PEM bytes (the operator
// reads them from Secrets; FromConfig from files): TLS 1.2 or later; caPEM, the authorities
// trusted for the brokers' certificates (empty: the system roots); certPEM and keyPEM, a
// client certificate for brokers that require one (both or neither); serverName, the name
// the brokers' certificates must carry (empty: the host of each address dialled).
func TLSConfig(caPEM, certPEM, keyPEM []byte, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("kafka TLS: the CA bundle holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	switch {
	case len(certPEM) > 0 && len(keyPEM) > 0:
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("kafka TLS: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case len(certPEM) > 0 || len(keyPEM) > 0:
		return nil, errors.New("kafka TLS: a client certificate needs both the certificate and its key")
	}
	return cfg, nil
}
