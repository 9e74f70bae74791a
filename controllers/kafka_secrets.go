package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
)

// The operator manages the topics with the gateway's own Kafka credentials: a Kafka cluster
// that requires TLS or SASL refuses it otherwise. It reads the Secrets spec.kafka references
// with a plain get each reconcile (SecretReader, uncached), never lists or watches Secrets,
// and keeps nothing of them between reconciles. A changed Secret is therefore seen at the
// next reconcile, not at once (see docs/operator.md).

// SecretError says that a Secret spec.kafka references cannot be used: missing, without the
// named key, or holding material that does not parse. It is the user's to fix: KafkaReady
// False with reason KafkaSecretInvalid and a Warning Event carrying this message.
type SecretError struct {
	// Field is the spec field that references the Secret, e.g. spec.kafka.sasl.secretRef.
	Field string
	// Secret and Key name what is wrong; Key is empty when the whole Secret is.
	Secret, Key string
	Err         error
}

func (e *SecretError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("Secret %q (%s): %v", e.Secret, e.Field, e.Err)
	}
	return fmt.Sprintf("Secret %q key %q (%s): %v", e.Secret, e.Key, e.Field, e.Err)
}

func (e *SecretError) Unwrap() error { return e.Err }

// ErrSecretNotFound is the cause of a SecretError about a Secret that does not exist.
var ErrSecretNotFound = errors.New("not found")

// secretKey is one key of one Secret that spec.kafka references.
type secretKey struct {
	field, secret, key string
}

// kafkaSecretKeys lists the Secret keys spec.kafka references, in a fixed order.
func kafkaSecretKeys(k *v1alpha1.Kafka) []secretKey {
	var keys []secretKey
	if t := k.TLS; t != nil {
		if t.CA != nil {
			keys = append(keys, secretKey{"spec.kafka.tls.ca", t.CA.Name, string(t.CA.Key)})
		}
		if c := t.ClientCertificate; c != nil {
			keys = append(keys,
				secretKey{"spec.kafka.tls.clientCertificate", c.SecretName, string(orDefault(c.CertificateKey, "tls.crt"))},
				secretKey{"spec.kafka.tls.clientCertificate", c.SecretName, string(orDefault(c.PrivateKeyKey, "tls.key"))})
		}
	}
	if s := k.SASL; s != nil {
		keys = append(keys,
			secretKey{"spec.kafka.sasl.secretRef", s.SecretRef.Name, string(orDefault(s.UsernameKey, "username"))},
			secretKey{"spec.kafka.sasl.secretRef", s.SecretRef.Name, string(orDefault(s.PasswordKey, "password"))})
	}
	return keys
}

// orDefault stands in for a schema default on objects built in Go.
func orDefault(k v1alpha1.SecretKeyName, def v1alpha1.SecretKeyName) v1alpha1.SecretKeyName {
	if k == "" {
		return def
	}
	return k
}

// KafkaSecurity builds the TLS and SASL of spec.kafka from the referenced Secrets (a Secret
// absent from secrets does not exist). It checks what the gateway will check at start, so a
// Secret the pods would refuse is reported on the TCPGateway rather than only in their logs.
// Every error is a *SecretError.
func KafkaSecurity(k *v1alpha1.Kafka, secrets map[string]*corev1.Secret) (kafkasec.Security, error) {
	var sec kafkasec.Security
	value := func(ref secretKey) ([]byte, error) {
		s, ok := secrets[ref.secret]
		if !ok {
			return nil, &SecretError{Field: ref.field, Secret: ref.secret, Err: ErrSecretNotFound}
		}
		v, ok := s.Data[ref.key]
		if !ok {
			return nil, &SecretError{Field: ref.field, Secret: ref.secret, Key: ref.key, Err: fmt.Errorf("no such key")}
		}
		if len(v) == 0 {
			return nil, &SecretError{Field: ref.field, Secret: ref.secret, Key: ref.key, Err: fmt.Errorf("empty")}
		}
		return v, nil
	}
	if t := k.TLS; t != nil {
		var caPEM, certPEM, keyPEM []byte
		if t.CA != nil {
			ref := secretKey{"spec.kafka.tls.ca", t.CA.Name, string(t.CA.Key)}
			v, err := value(ref)
			if err != nil {
				return sec, err
			}
			// Checked alone first, so that a bad CA is blamed on its own Secret key.
			if _, err := kafkasec.TLSConfig(v, nil, nil, ""); err != nil {
				return sec, &SecretError{Field: ref.field, Secret: ref.secret, Key: ref.key, Err: err}
			}
			caPEM = v
		}
		if c := t.ClientCertificate; c != nil {
			field := "spec.kafka.tls.clientCertificate"
			certKey, keyKey := string(orDefault(c.CertificateKey, "tls.crt")), string(orDefault(c.PrivateKeyKey, "tls.key"))
			var err error
			if certPEM, err = value(secretKey{field, c.SecretName, certKey}); err != nil {
				return sec, err
			}
			if keyPEM, err = value(secretKey{field, c.SecretName, keyKey}); err != nil {
				return sec, err
			}
			if _, err := kafkasec.TLSConfig(nil, certPEM, keyPEM, ""); err != nil {
				return sec, &SecretError{Field: field, Secret: c.SecretName, Key: certKey + ", " + keyKey, Err: err}
			}
		}
		cfg, err := kafkasec.TLSConfig(caPEM, certPEM, keyPEM, t.ServerName)
		if err != nil {
			// Each part parsed alone above; this is not expected, but still the Secrets' doing.
			return sec, &SecretError{Field: "spec.kafka.tls", Secret: tlsSecretNames(t), Err: err}
		}
		sec.TLS = cfg
	}
	if s := k.SASL; s != nil {
		field := "spec.kafka.sasl.secretRef"
		userKey, passKey := string(orDefault(s.UsernameKey, "username")), string(orDefault(s.PasswordKey, "password"))
		user, err := value(secretKey{field, s.SecretRef.Name, userKey})
		if err != nil {
			return sec, err
		}
		pass, err := value(secretKey{field, s.SecretRef.Name, passKey})
		if err != nil {
			return sec, err
		}
		mechanism := string(s.Mechanism)
		if mechanism == "" {
			mechanism = config.DefaultKafkaSASLMechanism
		}
		m, err := kafkasec.Mechanism(mechanism, trimLineBreak(user), trimLineBreak(pass))
		if err != nil {
			return sec, &SecretError{Field: field, Secret: s.SecretRef.Name, Key: userKey + ", " + passKey, Err: err}
		}
		sec.SASL = m
	}
	return sec, nil
}

// trimLineBreak drops one trailing line break, as the gateway does when it reads the same
// values from the mounted files (a Secret made from a file written by an editor or echo
// carries one; no password does).
func trimLineBreak(b []byte) string {
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
}

func tlsSecretNames(t *v1alpha1.KafkaTLS) string {
	var names []string
	if t.CA != nil {
		names = append(names, t.CA.Name)
	}
	if t.ClientCertificate != nil && (t.CA == nil || t.ClientCertificate.SecretName != t.CA.Name) {
		names = append(names, t.ClientCertificate.SecretName)
	}
	return strings.Join(names, ", ")
}

// readKafkaSecrets gets each Secret spec.kafka references once. A Secret that does not
// exist is left out (KafkaSecurity reports it); any other failure to read one is a
// *SecretError too, since without it the operator cannot reach Kafka either.
func readKafkaSecrets(ctx context.Context, r client.Reader, gw *v1alpha1.TCPGateway) (map[string]*corev1.Secret, error) {
	secrets := map[string]*corev1.Secret{}
	seen := map[string]bool{}
	for _, ref := range kafkaSecretKeys(&gw.Spec.Kafka) {
		if seen[ref.secret] {
			continue
		}
		seen[ref.secret] = true
		s := &corev1.Secret{}
		err := r.Get(ctx, client.ObjectKey{Namespace: gw.Namespace, Name: ref.secret}, s)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, &SecretError{Field: ref.field, Secret: ref.secret, Err: fmt.Errorf("while getting it: %w", err)}
		default:
			secrets[ref.secret] = s
		}
	}
	return secrets, nil
}

// kafkaCluster is how the operator reaches the TCPGateway's Kafka: its brokers, with the TLS
// and SASL of the referenced Secrets.
func (r *TCPGatewayReconciler) kafkaCluster(ctx context.Context, gw *v1alpha1.TCPGateway) (KafkaCluster, error) {
	kc := KafkaCluster{Brokers: brokers(gw)}
	if gw.Spec.Kafka.TLS == nil && gw.Spec.Kafka.SASL == nil {
		return kc, nil
	}
	secrets, err := readKafkaSecrets(ctx, r.SecretReader, gw)
	if err != nil {
		return kc, err
	}
	kc.Security, err = KafkaSecurity(&gw.Spec.Kafka, secrets)
	return kc, err
}
