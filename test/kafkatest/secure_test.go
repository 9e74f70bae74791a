package kafkatest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"

	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

// TestSecureSCRAMSHA512OverTLS: a kafka-go client with TLS (trusting only the broker's CA)
// and SCRAM-SHA-512 creates a topic, produces to it and consumes it through a consumer group,
// all through the SASL_SSL listener.
func TestSecureSCRAMSHA512OverTLS(t *testing.T) {
	s := kafkatest.StartSecure(t)
	tlsCfg := kafkatest.TLSConfig(t, s.CAFile)
	mech := kafkatest.Mechanism(t, "SCRAM-SHA-512", s.Username, s.Password)
	transport := &kafka.Transport{TLS: tlsCfg, SASL: mech, DialTimeout: 10 * time.Second}
	defer transport.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	topic := kafkatest.TopicName(t)
	client := &kafka.Client{Addr: kafka.TCP(s.Bootstrap), Timeout: 10 * time.Second, Transport: transport}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}},
	})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		t.Fatalf("create topic over SASL_SSL: %v", err)
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer dcancel()
		if _, err := client.DeleteTopics(dctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
			t.Logf("delete topic %s: %v", topic, err)
		}
	})

	w := &kafka.Writer{
		Addr:         kafka.TCP(s.Bootstrap),
		Topic:        topic,
		Transport:    transport,
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	// The new topic's partition may not have a leader yet: retry the first write, bounded
	// by ctx.
	for {
		err = w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("over SASL_SSL")})
		if err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		t.Fatalf("produce over SASL_SSL: %v", err)
	}

	r := newGroupReader(t, s.Bootstrap, topic, topic+"-group", func(c *kafka.ReaderConfig) {
		c.Dialer = &kafka.Dialer{TLS: tlsCfg, SASLMechanism: mech, Timeout: 10 * time.Second}
	})
	defer r.Close()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("consume over SASL_SSL: %v", err)
	}
	if string(m.Value) != "over SASL_SSL" {
		t.Fatalf("consumed %q, want %q", m.Value, "over SASL_SSL")
	}
	if err := r.CommitMessages(ctx, m); err != nil {
		t.Fatalf("commit over SASL_SSL: %v", err)
	}
}

// dial opens one connection to addr with the given TLS and SASL settings (either may be nil)
// and asks for the topic's partitions, so that a success proves an authenticated session.
func dial(t *testing.T, addr string, tlsCfg *tls.Config, mech sasl.Mechanism, topic string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := &kafka.Dialer{TLS: tlsCfg, SASLMechanism: mech, Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		return err
	}
	if len(parts) != 1 {
		return fmt.Errorf("topic %s: %d partitions, want 1", topic, len(parts))
	}
	return nil
}

// TestSecureMechanisms: each SASL mechanism authenticates with the broker's user and
// password, and is refused with SASLAuthenticationFailed for a wrong password.
func TestSecureMechanisms(t *testing.T) {
	s := kafkatest.StartSecure(t)
	topic := s.CreateTopic(t, 1)
	tlsCfg := kafkatest.TLSConfig(t, s.CAFile)
	for _, name := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(name, func(t *testing.T) {
			if err := dial(t, s.Bootstrap, tlsCfg, kafkatest.Mechanism(t, name, s.Username, s.Password), topic); err != nil {
				t.Fatalf("right password: %v", err)
			}
			err := dial(t, s.Bootstrap, tlsCfg, kafkatest.Mechanism(t, name, s.Username, s.Password+"-wrong"), topic)
			if !errors.Is(err, kafka.SASLAuthenticationFailed) {
				t.Fatalf("wrong password: got %v, want SASLAuthenticationFailed", err)
			}
			err = dial(t, s.Bootstrap, tlsCfg, kafkatest.Mechanism(t, name, "nobody", s.Password), topic)
			if !errors.Is(err, kafka.SASLAuthenticationFailed) {
				t.Fatalf("unknown user: got %v, want SASLAuthenticationFailed", err)
			}
		})
	}
}

// TestSecureTLSFailures: the client refuses the expired server certificate and a server
// certificate from a CA it does not trust, each with its own x509 error; a client that
// speaks no TLS gets no session.
func TestSecureTLSFailures(t *testing.T) {
	s := kafkatest.StartSecure(t)
	topic := s.CreateTopic(t, 1)
	mech := kafkatest.Mechanism(t, "SCRAM-SHA-512", s.Username, s.Password)

	err := dial(t, s.ExpiredBootstrap, kafkatest.TLSConfig(t, s.CAFile), mech, topic)
	var invalid x509.CertificateInvalidError
	if !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
		t.Errorf("expired listener: got %v, want an x509 Expired error", err)
	}

	err = dial(t, s.Bootstrap, kafkatest.TLSConfig(t, s.OtherCAFile), mech, topic)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("untrusted CA: got %v, want x509.UnknownAuthorityError", err)
	}

	wrongName := kafkatest.TLSConfig(t, s.CAFile)
	wrongName.ServerName = "kafka.example.com"
	err = dial(t, s.Bootstrap, wrongName, mech, topic)
	var hostname x509.HostnameError
	if !errors.As(err, &hostname) {
		t.Errorf("wrong server name: got %v, want x509.HostnameError", err)
	}

	if err := dial(t, s.Bootstrap, nil, mech, topic); err == nil {
		t.Errorf("plaintext client on the SASL_SSL listener: got a session, want an error")
	}
}

// TestSecureMTLS: the MTLS listener serves a client that presents the client certificate
// and refuses one that presents none.
func TestSecureMTLS(t *testing.T) {
	s := kafkatest.StartSecure(t)
	topic := s.CreateTopic(t, 1)
	cert, err := tls.LoadX509KeyPair(s.ClientCertFile, s.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	withCert := kafkatest.TLSConfig(t, s.CAFile)
	withCert.Certificates = []tls.Certificate{cert}
	if err := dial(t, s.MTLSBootstrap, withCert, nil, topic); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
	if err := dial(t, s.MTLSBootstrap, kafkatest.TLSConfig(t, s.CAFile), nil, topic); err == nil {
		t.Fatalf("without a client certificate: got a session, want an error")
	}
}

// TestSecureSetSCRAMPassword: a user created at run time authenticates with its password, and
// after a change only with the new one.
func TestSecureSetSCRAMPassword(t *testing.T) {
	s := kafkatest.StartSecure(t)
	topic := s.CreateTopic(t, 1)
	tlsCfg := kafkatest.TLSConfig(t, s.CAFile)
	user := kafkatest.TopicName(t) // unique per run: the broker may be shared
	const mechName = "SCRAM-SHA-256"

	s.SetSCRAMPassword(t, mechName, user, "first")
	if err := dial(t, s.Bootstrap, tlsCfg, kafkatest.Mechanism(t, mechName, user, "first"), topic); err != nil {
		t.Fatalf("new user: %v", err)
	}
	s.SetSCRAMPassword(t, mechName, user, "second")
	if err := dial(t, s.Bootstrap, tlsCfg, kafkatest.Mechanism(t, mechName, user, "second"), topic); err != nil {
		t.Fatalf("changed password: %v", err)
	}
	err := dial(t, s.Bootstrap, tlsCfg, kafkatest.Mechanism(t, mechName, user, "first"), topic)
	if !errors.Is(err, kafka.SASLAuthenticationFailed) {
		t.Fatalf("old password after the change: got %v, want SASLAuthenticationFailed", err)
	}
}

// TestLoadSecureRejectsOtherDirs: a directory that is not a running secured broker's state is
// an error, not a broker with empty addresses.
func TestLoadSecureRejectsOtherDirs(t *testing.T) {
	if _, err := kafkatest.LoadSecure(t.TempDir()); err == nil {
		t.Fatal("LoadSecure of an empty dir: no error")
	}
}
