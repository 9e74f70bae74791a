package kafkasec

import (
	"crypto/tls"
	"fmt"
	"os"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// FromConfig builds the Security of the gateway configuration's kafka.tls and kafka.sasl,
// reading their files once so that a missing or invalid one fails the start with a clear
// error. Afterwards the files are read again for each new broker connection: certificates,
// the CA bundle and the SASL credentials rotate without a restart.
func FromConfig(k config.Kafka) (Security, error) {
	var s Security
	if t := k.TLS; t != nil {
		load := func() (*tls.Config, error) { return loadTLS(*t) }
		cfg, err := load()
		if err != nil {
			return Security{}, err
		}
		s.TLS, s.tlsFiles = cfg, load
	}
	if c := k.SASL; c != nil {
		name := c.Mechanism
		if name == "" {
			name = config.DefaultKafkaSASLMechanism
		}
		m := fileMechanism{name: name, usernameFile: c.UsernameFile, passwordFile: c.PasswordFile}
		if _, err := m.load(); err != nil {
			return Security{}, fmt.Errorf("kafka.sasl: %w", err)
		}
		s.SASL = m
	}
	return s, nil
}

// loadTLS reads kafka.tls's files and builds the TLS configuration from them.
func loadTLS(t config.KafkaTLS) (*tls.Config, error) {
	read := func(field, path string) ([]byte, error) {
		if path == "" {
			return nil, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.%s: %w", field, err)
		}
		return b, nil
	}
	ca, err := read("caFile", t.CAFile)
	if err != nil {
		return nil, err
	}
	cert, err := read("certFile", t.CertFile)
	if err != nil {
		return nil, err
	}
	key, err := read("keyFile", t.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg, err := TLSConfig(ca, cert, key, t.ServerName)
	if err != nil {
		return nil, fmt.Errorf("kafka.tls: %w", err)
	}
	return cfg, nil
}
