// Package kafkasec is how every Kafka client of tcpgateway speaks TLS and SASL to the brokers
// and how their failures are named: the gateway's downlink consumer, receipt writer and
// expiry group, the receipts watcher, the push SDK, tcpgwctl, and the operator's topic
// management (controllers/kafka_topics.go). The operator importing it is a deliberate
// exception to "gateway/config is the only gateway package the operator imports": both sides
// must build the same TLS configuration and classify a failure with the same reason
// (kafka_auth_failed, kafka_tls_failed, topics_missing, kafka_unreachable). So this package imports only
// gateway/config, kafka-go and the standard library.
package kafkasec

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
)

// Security is how to connect to the brokers. The zero value is plaintext without
// authentication.
type Security struct {
	// TLS, when set, makes every connection TLS. An empty ServerName means the host of the
	// address dialled.
	TLS *tls.Config
	// SASL, when set, authenticates every connection.
	SASL sasl.Mechanism

	// tlsFiles, set by FromConfig, re-reads the TLS material for each new connection so that
	// rotated certificates apply without a restart; TLS is what it read at start.
	tlsFiles func() (*tls.Config, error)
}

// Enabled reports whether the connections use TLS or SASL.
func (s Security) Enabled() bool { return s.TLS != nil || s.SASL != nil }

// Dialer returns a kafka-go Dialer (readers, consumer groups) with this security, a client
// id the brokers log and quota by, and a timeout for each connection (TCP, TLS handshake and
// SASL exchange together).
func (s Security) Dialer(clientID string, timeout time.Duration) *kafka.Dialer {
	d := &kafka.Dialer{ClientID: clientID, Timeout: timeout, DualStack: true, SASLMechanism: s.SASL}
	if s.TLS != nil {
		d.DialFunc = s.dialTLS
	}
	return d
}

// Transport returns a kafka-go Transport (kafka.Client, kafka.Writer) with this security, a
// client id, and a timeout for each connection's set-up up to its API versions exchange:
// kafka-go clears the deadline before the SASL exchange, so callers bound that with their
// requests' contexts (gateway/events). Its connections are pooled: call CloseIdleConnections
// when done with it.
func (s Security) Transport(clientID string, dialTimeout time.Duration) *kafka.Transport {
	t := &kafka.Transport{ClientID: clientID, DialTimeout: dialTimeout, SASL: s.SASL}
	if s.TLS != nil {
		t.Dial = s.dialTLS
	}
	return t
}

// dialTLS opens a TCP connection and completes the TLS handshake on it. kafka-go can do TLS
// itself (Dialer.TLS, Transport.TLS), but it starts the handshake lazily inside its first
// request, and crypto/tls reports some handshake failures as plain strings; doing it here
// lets every handshake failure carry TLSError, which Reason names kafka_tls_failed.
func (s Security) dialTLS(ctx context.Context, network, address string) (net.Conn, error) {
	cfg := s.TLS
	if s.tlsFiles != nil {
		c, err := s.tlsFiles()
		if err != nil {
			return nil, &TLSError{Addr: address, Err: err}
		}
		cfg = c
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			host = address
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, &TLSError{Addr: address, Err: err}
	}
	return tc, nil
}

// TLSError is a failed TLS handshake with a broker (or unreadable TLS material).
type TLSError struct {
	Addr string
	Err  error
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("TLS handshake with Kafka broker %s failed: %v", e.Addr, e.Err)
}

func (e *TLSError) Unwrap() error { return e.Err }
