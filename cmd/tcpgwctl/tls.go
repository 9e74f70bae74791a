package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
)

// tlsFlags select TLS to the gateway (its listen.tls, or a load balancer terminating TLS):
// shared by connect, request, watch and bench.
type tlsFlags struct {
	enable     bool
	ca         string
	serverName string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.enable, "tls", false, "connect with TLS (implied by -ca and -server-name)")
	fs.StringVar(&f.ca, "ca", "", "PEM file of the CA certificates to trust instead of the system roots (implies -tls)")
	fs.StringVar(&f.serverName, "server-name", "", "name the gateway's certificate must hold (default: the host of -addr; implies -tls)")
}

// config is the client TLS configuration the flags ask for, nil for plaintext.
func (f *tlsFlags) config() (*tls.Config, error) {
	if !f.enable && f.ca == "" && f.serverName == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.serverName}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("-ca: no PEM certificate in " + f.ca)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
