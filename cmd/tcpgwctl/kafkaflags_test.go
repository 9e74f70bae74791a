package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/test/tlstest"
)

func TestKafkaFlags(t *testing.T) {
	dir := t.TempDir()
	file := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca, pass := file("ca.crt", string(tlstest.MustCA(t, "test CA").PEM)), file("password", "s3cret\n")
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == kafkaPasswordEnv {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name      string
		args      []string
		env       string
		wantTLS   bool
		wantRoots bool
		wantSASL  string // mechanism name; "" for none
		wantErr   string
	}{
		{name: "plaintext"},
		{name: "TLS with system roots", args: []string{"-kafka-tls"}, wantTLS: true},
		{name: "CA implies TLS", args: []string{"-kafka-ca", ca}, wantTLS: true, wantRoots: true},
		{name: "server name implies TLS", args: []string{"-kafka-server-name", "kafka"}, wantTLS: true},
		{name: "SCRAM by default, password file", args: []string{"-kafka-ca", ca, "-sasl-username", "u", "-sasl-password-file", pass},
			wantTLS: true, wantRoots: true, wantSASL: kafkasec.ScramSHA512},
		{name: "PLAIN over TLS, password from the environment", args: []string{"-kafka-tls", "-sasl-username", "u", "-sasl-mechanism", "PLAIN"}, env: "pw",
			wantTLS: true, wantSASL: kafkasec.Plain},
		{name: "PLAIN without TLS", args: []string{"-sasl-username", "u", "-sasl-mechanism", "PLAIN"}, env: "pw", wantErr: "only with TLS"},
		{name: "SCRAM without TLS", args: []string{"-sasl-username", "u", "-sasl-mechanism", "SCRAM-SHA-256"}, env: "pw", wantSASL: kafkasec.ScramSHA256},
		{name: "no password", args: []string{"-sasl-username", "u"}, wantErr: "-sasl-username needs a password"},
		{name: "password without user", args: []string{"-sasl-password-file", pass}, wantErr: "-sasl-password-file needs -sasl-username"},
		{name: "unknown mechanism", args: []string{"-sasl-username", "u", "-sasl-mechanism", "GSSAPI"}, env: "pw", wantErr: `mechanism "GSSAPI"`},
		{name: "CA file missing", args: []string{"-kafka-ca", filepath.Join(dir, "absent")}, wantErr: "no such file"},
		{name: "certificate without key", args: []string{"-kafka-cert", ca}, wantErr: "needs both the certificate and its key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("push", flag.ContinueOnError)
			k := addKafkaFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			var o push.Options
			err := k.apply(&o, env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (o.TLS != nil) != tt.wantTLS || (tt.wantTLS && (o.TLS.RootCAs != nil) != tt.wantRoots) {
				t.Errorf("TLS = %+v, want TLS %v with custom roots %v", o.TLS, tt.wantTLS, tt.wantRoots)
			}
			got := ""
			if o.SASL != nil {
				got = o.SASL.Name()
			}
			if got != tt.wantSASL {
				t.Errorf("SASL = %q, want %q", got, tt.wantSASL)
			}
		})
	}
}

func TestWithKafkaReason(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("push: %w", kafka.SASLAuthenticationFailed), "[kafka_auth_failed]"},
		{errors.New("dial tcp: connection refused"), "[kafka_unreachable]"},
		{push.ErrTimeout, push.ErrTimeout.Error()}, // not Kafka's failure: no reason
	} {
		got := ""
		if err := withKafkaReason(tt.err); err != nil {
			got = err.Error()
		}
		if !strings.HasSuffix(got, tt.want) || (tt.err == push.ErrTimeout && strings.Contains(got, "[")) {
			t.Errorf("withKafkaReason(%v) = %q, want ending in %q", tt.err, got, tt.want)
		}
	}
}
