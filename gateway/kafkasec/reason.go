package kafkasec

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"

	"github.com/segmentio/kafka-go"
)

// Reasons a Kafka client fails, as the gateway's readiness, metric labels and logs say them.
const (
	// ReasonAuthFailed: the brokers refused the SASL credentials (wrong user or password,
	// mechanism not enabled) or the user's rights (ACLs), or the credentials could not be read.
	ReasonAuthFailed = "kafka_auth_failed"
	// ReasonTLSFailed: the TLS handshake failed: unknown certificate authority, expired or
	// not yet valid certificate, name mismatch, client certificate refused, a broker that
	// does not speak TLS, or TLS material that could not be read.
	ReasonTLSFailed = "kafka_tls_failed"
	// ReasonTopicsMissing: Kafka answered that the topic (or partition) does not exist
	// (UnknownTopicOrPartition): not created yet, or deleted. The same words as the
	// downlink's readiness reason for its own missing topics.
	ReasonTopicsMissing = "topics_missing"
	// ReasonUnreachable: anything else (connection refused, timeout, name resolution...).
	ReasonUnreachable = "kafka_unreachable"
)

// authErrors are the Kafka error codes that mean "who you are, or what you may do, was
// refused".
var authErrors = []kafka.Error{
	kafka.SASLAuthenticationFailed,
	kafka.UnsupportedSASLMechanism,
	kafka.IllegalSASLState,
	kafka.TopicAuthorizationFailed,
	kafka.GroupAuthorizationFailed,
	kafka.ClusterAuthorizationFailed,
}

// Reason classifies a Kafka client error: ReasonAuthFailed, ReasonTLSFailed,
// ReasonTopicsMissing or ReasonUnreachable ("" for nil). It looks through wrapped and joined
// errors, and through kafka.WriteErrors (a Writer's per-message errors), which does not
// unwrap: the first message's error that is not nil decides.
func Reason(err error) string {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil {
				return Reason(e)
			}
		}
	}
	switch {
	case err == nil:
		return ""
	case isAuth(err):
		return ReasonAuthFailed
	case isTLS(err):
		return ReasonTLSFailed
	case errors.Is(err, kafka.UnknownTopicOrPartition):
		return ReasonTopicsMissing
	}
	return ReasonUnreachable
}

// ConditionReason is Reason in the CamelCase form of Kubernetes condition reasons
// (KafkaAuthFailed, KafkaTLSFailed, KafkaUnreachable; "" for nil and for topics_missing,
// which the operator reports as its own TopicError), for the operator.
func ConditionReason(err error) string {
	switch Reason(err) {
	case ReasonAuthFailed:
		return "KafkaAuthFailed"
	case ReasonTLSFailed:
		return "KafkaTLSFailed"
	case ReasonUnreachable:
		return "KafkaUnreachable"
	}
	return ""
}

func isAuth(err error) bool {
	var ce *CredentialsError
	if errors.As(err, &ce) {
		return true
	}
	for _, code := range authErrors {
		if errors.Is(err, code) {
			return true
		}
	}
	return false
}

// isTLS recognises handshake failures: this package's TLSError (dialTLS wraps every one), and
// for connections kafka-go secured itself, the typed errors of crypto/tls and crypto/x509.
func isTLS(err error) bool {
	var (
		te   *TLSError
		cve  *tls.CertificateVerificationError
		rhe  tls.RecordHeaderError
		ae   tls.AlertError
		uae  x509.UnknownAuthorityError
		cie  x509.CertificateInvalidError
		hne  x509.HostnameError
		sre  x509.SystemRootsError
		oerr *net.OpError
	)
	switch {
	case errors.As(err, &te), errors.As(err, &cve), errors.As(err, &rhe), errors.As(err, &ae),
		errors.As(err, &uae), errors.As(err, &cie), errors.As(err, &hne), errors.As(err, &sre):
		return true
	case errors.As(err, &oerr):
		// crypto/tls reports an alert the peer sent as a "remote error" and one it sent itself
		// as a "local error"; no other package uses these Ops.
		return oerr.Op == "remote error" || oerr.Op == "local error"
	}
	return false
}
