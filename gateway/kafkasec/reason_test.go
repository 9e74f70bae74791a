package kafkasec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/test/tlstest"
)

func TestReasonOfErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"SASL refused, as kafka-go's Dialer wraps it", fmt.Errorf("could not successfully authenticate to %s:%d with SASL: %w", "b", 9093, kafka.SASLAuthenticationFailed), ReasonAuthFailed},
		{"SASL refused, joined", errors.Join(errors.New("x"), kafka.SASLAuthenticationFailed), ReasonAuthFailed},
		{"mechanism not enabled", kafka.UnsupportedSASLMechanism, ReasonAuthFailed},
		{"topic ACL", fmt.Errorf("topic t: %w", kafka.TopicAuthorizationFailed), ReasonAuthFailed},
		{"group ACL", kafka.GroupAuthorizationFailed, ReasonAuthFailed},
		{"credentials unreadable", &CredentialsError{Err: os.ErrNotExist}, ReasonAuthFailed},
		{"handshake", &TLSError{Addr: "b:9093", Err: errors.New("tls: server selected unsupported protocol version 301")}, ReasonTLSFailed},
		{"unknown authority", fmt.Errorf("x: %w", x509.UnknownAuthorityError{}), ReasonTLSFailed},
		{"verification", &tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired}}, ReasonTLSFailed},
		{"hostname", x509.HostnameError{Host: "b"}, ReasonTLSFailed},
		{"not TLS", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, ReasonTLSFailed},
		{"alert from the broker", &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, ReasonTLSFailed},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, ReasonUnreachable},
		{"timeout", context.DeadlineExceeded, ReasonUnreachable},
		{"closed", io.EOF, ReasonUnreachable},
		{"other Kafka error", kafka.LeaderNotAvailable, ReasonUnreachable},
		{"a Writer's per-message errors", fmt.Errorf("push: %w", kafka.WriteErrors{nil, kafka.TopicAuthorizationFailed}), ReasonAuthFailed},
		{"a Writer's per-message errors, TLS", kafka.WriteErrors{&TLSError{Err: io.EOF}}, ReasonTLSFailed},
		{"topic missing", fmt.Errorf("partition 0: %w", kafka.UnknownTopicOrPartition), ReasonTopicsMissing},
		{"a Writer's per-message errors, topic missing", kafka.WriteErrors{nil, kafka.UnknownTopicOrPartition, kafka.UnknownTopicOrPartition}, ReasonTopicsMissing},
	}
	for _, tt := range tests {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("%s: Reason(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
	for err, want := range map[error]string{
		nil: "", kafka.SASLAuthenticationFailed: "KafkaAuthFailed", x509.HostnameError{}: "KafkaTLSFailed", io.EOF: "KafkaUnreachable",
		kafka.UnknownTopicOrPartition: "",
	} {
		if got := ConditionReason(err); got != want {
			t.Errorf("ConditionReason(%v) = %q, want %q", err, got, want)
		}
	}
}

// tlsServer accepts TLS connections on loopback with cfg, completes the handshake and
// answers one byte, until the test ends. It returns the port.
func tlsServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				tc := tls.Server(c, cfg)
				if tc.Handshake() == nil {
					_, _ = tc.Write([]byte{1})
				}
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func serverConfig(t *testing.T, certPEM, keyPEM []byte) *tls.Config {
	t.Helper()
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}}
}

// roundTrip dials with s and reads the server's byte: TLS 1.3 reports a refused client
// certificate only at the first read.
func roundTrip(s Security, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := s.dialTLS(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return err
}

// TestHandshakeFailures performs each TLS failure against a real TLS server on loopback and
// checks its reason.
func TestHandshakeFailures(t *testing.T) {
	ca, otherCA := tlstest.MustCA(t, "test CA"), tlstest.MustCA(t, "other CA")
	server := ca.MustIssue(t, tlstest.Leaf{})
	cert, key := server.CertPEM, server.KeyPEM
	good := serverConfig(t, cert, key)
	past := time.Now().Add(-48 * time.Hour)
	expired := ca.MustIssue(t, tlstest.Leaf{NotBefore: past, NotAfter: past.Add(24 * time.Hour)})
	expCert, expKey := expired.CertPEM, expired.KeyPEM
	client := ca.MustIssue(t, tlstest.Leaf{Client: true})
	clientCert, clientKey := client.CertPEM, client.KeyPEM
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	mtls := serverConfig(t, cert, key)
	mtls.ClientAuth, mtls.ClientCAs = tls.RequireAndVerifyClientCert, pool

	plain, err := net.Listen("tcp", "127.0.0.1:0") // answers like a plaintext Kafka listener would not: with junk
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("\x00\x00\x00\x10not a TLS record"))
			_ = c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	sec := func(caPEM, certPEM, keyPEM []byte, serverName string) Security {
		cfg, err := TLSConfig(caPEM, certPEM, keyPEM, serverName)
		if err != nil {
			t.Fatal(err)
		}
		return Security{TLS: cfg}
	}
	tests := []struct {
		name string
		s    Security
		addr string
		want string
		as   any // a typed error the chain must hold
	}{
		{"trusted, server name from the address", sec(ca.PEM, nil, nil, ""), "localhost:" + tlsServer(t, good), "", nil},
		{"trusted, IP address", sec(ca.PEM, nil, nil, ""), "127.0.0.1:" + tlsServer(t, good), "", nil},
		{"unknown CA", sec(otherCA.PEM, nil, nil, ""), "localhost:" + tlsServer(t, good), ReasonTLSFailed, new(x509.UnknownAuthorityError)},
		{"expired certificate", sec(ca.PEM, nil, nil, ""), "localhost:" + tlsServer(t, serverConfig(t, expCert, expKey)), ReasonTLSFailed, new(x509.CertificateInvalidError)},
		{"name mismatch", sec(ca.PEM, nil, nil, "kafka.example.com"), "localhost:" + tlsServer(t, good), ReasonTLSFailed, new(x509.HostnameError)},
		{"client certificate required, none given", sec(ca.PEM, nil, nil, ""), "localhost:" + tlsServer(t, mtls), ReasonTLSFailed, nil},
		{"client certificate given", sec(ca.PEM, clientCert, clientKey, ""), "localhost:" + tlsServer(t, mtls), "", nil},
		{"not a TLS listener", sec(ca.PEM, nil, nil, ""), plain.Addr().String(), ReasonTLSFailed, nil},
		{"nothing listening", sec(ca.PEM, nil, nil, ""), closedAddr, ReasonUnreachable, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := roundTrip(tt.s, tt.addr)
			if got := Reason(err); got != tt.want {
				t.Fatalf("Reason(%v) = %q, want %q", err, got, tt.want)
			}
			if tt.as != nil && !errors.As(err, tt.as) {
				t.Fatalf("err = %v, want a %T in its chain", err, tt.as)
			}
		})
	}
}

// TestFromConfigRereadsTLSFiles: the CA bundle is read for each new connection, so a
// rotated one applies without rebuilding the Security.
func TestFromConfigRereadsTLSFiles(t *testing.T) {
	ca, otherCA := tlstest.MustCA(t, "test CA"), tlstest.MustCA(t, "other CA")
	server := ca.MustIssue(t, tlstest.Leaf{})
	cert, key := server.CertPEM, server.KeyPEM
	addr := "localhost:" + tlsServer(t, serverConfig(t, cert, key))
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, otherCA.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := FromConfig(config.Kafka{TLS: &config.KafkaTLS{CAFile: caFile}})
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(s, addr); Reason(err) != ReasonTLSFailed {
		t.Fatalf("before rotation: err = %v, want kafka_tls_failed", err)
	}
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(s, addr); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if err := os.Remove(caFile); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(s, addr); Reason(err) != ReasonTLSFailed {
		t.Fatalf("CA file gone: err = %v, want kafka_tls_failed", err)
	}
}

func TestFromConfig(t *testing.T) {
	ca := tlstest.MustCA(t, "test CA")
	server := ca.MustIssue(t, tlstest.Leaf{})
	cert, key := server.CertPEM, server.KeyPEM
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile, certFile, keyFile := file("ca.crt", ca.PEM), file("tls.crt", cert), file("tls.key", key)
	user, pass, empty := file("username", []byte("gw\n")), file("password", []byte("pw\n")), file("empty", nil)
	absent := filepath.Join(dir, "absent")

	s, err := FromConfig(config.Kafka{})
	if err != nil || s.Enabled() {
		t.Fatalf("no tls, no sasl: %+v, %v; want plaintext", s, err)
	}
	s, err = FromConfig(config.Kafka{
		TLS:  &config.KafkaTLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile, ServerName: "kafka"},
		SASL: &config.KafkaSASL{UsernameFile: user, PasswordFile: pass},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.TLS == nil || s.TLS.ServerName != "kafka" || len(s.TLS.Certificates) != 1 || s.SASL.Name() != config.DefaultKafkaSASLMechanism {
		t.Fatalf("FromConfig = %+v", s)
	}
	if d := s.Dialer("gw-0", time.Second); d.DialFunc == nil || d.TLS != nil || d.SASLMechanism == nil || d.ClientID != "gw-0" {
		t.Errorf("Dialer = %+v: want our TLS dial, no kafka-go TLS, SASL and the client id", d)
	}
	if tr := s.Transport("gw-0", time.Second); tr.Dial == nil || tr.TLS != nil || tr.SASL == nil || tr.ClientID != "gw-0" {
		t.Errorf("Transport = %+v: want our TLS dial, no kafka-go TLS, SASL and the client id", tr)
	}
	if d := (Security{}).Dialer("x", time.Second); d.DialFunc != nil || d.SASLMechanism != nil {
		t.Errorf("plaintext Dialer = %+v", d)
	}

	for _, tt := range []struct {
		name string
		k    config.Kafka
		want string
	}{
		{"CA file missing", config.Kafka{TLS: &config.KafkaTLS{CAFile: absent}}, "kafka.tls.caFile: open " + absent},
		{"key file missing", config.Kafka{TLS: &config.KafkaTLS{CertFile: certFile, KeyFile: absent}}, "kafka.tls.keyFile:"},
		{"CA file not PEM", config.Kafka{TLS: &config.KafkaTLS{CAFile: user}}, "kafka.tls: kafka TLS: the CA bundle holds no PEM certificate"},
		{"password file missing", config.Kafka{SASL: &config.KafkaSASL{UsernameFile: user, PasswordFile: absent}}, "kafka.sasl: kafka SASL credentials: open " + absent},
		{"password empty", config.Kafka{SASL: &config.KafkaSASL{UsernameFile: user, PasswordFile: empty}}, "must not be empty"},
		{"unknown mechanism", config.Kafka{SASL: &config.KafkaSASL{Mechanism: "OAUTHBEARER", UsernameFile: user, PasswordFile: pass}}, `mechanism "OAUTHBEARER"`},
	} {
		if _, err := FromConfig(tt.k); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want containing %q", tt.name, err, tt.want)
		}
	}
}
