package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/tcpgateway/tcpgateway/test/tlstest"
)

func parseTLS(t *testing.T, args ...string) (*tlsFlagsResult, error) {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var f tlsFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if cfg == nil {
		return nil, err
	}
	return &tlsFlagsResult{serverName: cfg.ServerName, roots: cfg.RootCAs != nil, min: cfg.MinVersion}, err
}

type tlsFlagsResult struct {
	serverName string
	roots      bool
	min        uint16
}

func TestTLSFlags(t *testing.T) {
	ca, err := tlstest.NewCA("flags CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}

	if r, err := parseTLS(t); r != nil || err != nil {
		t.Errorf("no flags: %+v, %v; want plaintext", r, err)
	}
	if r, err := parseTLS(t, "-tls"); err != nil || r == nil || r.roots || r.serverName != "" || r.min != 0x0303 {
		t.Errorf("-tls: %+v, %v; want TLS 1.2+ with the system roots", r, err)
	}
	if r, err := parseTLS(t, "-ca", caFile); err != nil || r == nil || !r.roots {
		t.Errorf("-ca: %+v, %v; want TLS trusting the file", r, err)
	}
	if r, err := parseTLS(t, "-server-name", "chat.example.com"); err != nil || r == nil || r.serverName != "chat.example.com" {
		t.Errorf("-server-name: %+v, %v", r, err)
	}
	if _, err := parseTLS(t, "-ca", junk); err == nil {
		t.Error("-ca with no certificate in it accepted")
	}
	if _, err := parseTLS(t, "-ca", filepath.Join(dir, "absent")); err == nil {
		t.Error("-ca with a missing file accepted")
	}
}
