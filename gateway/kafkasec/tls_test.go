package kafkasec

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/tcpgateway/tcpgateway/test/tlstest"
)

func TestTLSConfig(t *testing.T) {
	ca := tlstest.MustCA(t, "test CA")
	server := ca.MustIssue(t, tlstest.Leaf{})
	cert, key := server.CertPEM, server.KeyPEM
	otherKey := ca.MustIssue(t, tlstest.Leaf{}).KeyPEM
	tests := []struct {
		name                string
		ca, cert, key       []byte
		serverName, wantErr string
		wantRoots, wantPair bool
	}{
		{name: "system roots", wantRoots: false},
		{name: "custom CA and server name", ca: ca.PEM, serverName: "kafka.internal", wantRoots: true},
		{name: "client certificate", ca: ca.PEM, cert: cert, key: key, wantRoots: true, wantPair: true},
		{name: "CA bundle without a certificate", ca: []byte("not PEM"), wantErr: "the CA bundle holds no PEM certificate"},
		{name: "certificate without key", cert: cert, wantErr: "needs both the certificate and its key"},
		{name: "key without certificate", key: key, wantErr: "needs both the certificate and its key"},
		{name: "key of another certificate", cert: cert, key: otherKey, wantErr: "client certificate: tls: private key does not match public key"},
		{name: "garbage certificate", cert: []byte("x"), key: key, wantErr: "client certificate:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := TLSConfig(tt.ca, tt.cert, tt.key, tt.serverName)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
			}
			if cfg.InsecureSkipVerify {
				t.Error("InsecureSkipVerify set")
			}
			if cfg.ServerName != tt.serverName {
				t.Errorf("ServerName = %q, want %q", cfg.ServerName, tt.serverName)
			}
			if (cfg.RootCAs != nil) != tt.wantRoots {
				t.Errorf("RootCAs set = %v, want %v", cfg.RootCAs != nil, tt.wantRoots)
			}
			if (len(cfg.Certificates) == 1) != tt.wantPair {
				t.Errorf("client certificates = %d, want pair %v", len(cfg.Certificates), tt.wantPair)
			}
		})
	}
}
