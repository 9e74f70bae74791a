package controllers

import (
	"context"
	"errors"
	"testing"

	"github.com/segmentio/kafka-go/sasl/plain"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/test/tlstest"
)

func secret(name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "prod"}, Data: data}
}

func TestKafkaSecurity(t *testing.T) {
	ca := tlstest.MustCA(t, "test CA")
	p := ca.MustIssue(t, tlstest.Leaf{Client: true})
	other := tlstest.MustCA(t, "other CA").MustIssue(t, tlstest.Leaf{Client: true})
	caRef := &v1alpha1.SecretKeyReference{Name: "cluster-ca", Key: "ca.crt"}
	sasl := func(m v1alpha1.SASLMechanism) *v1alpha1.KafkaSASL {
		return &v1alpha1.KafkaSASL{Mechanism: m, SecretRef: v1alpha1.LocalSecretReference{Name: "kafka-user"}}
	}
	good := map[string]*corev1.Secret{
		"cluster-ca": secret("cluster-ca", map[string][]byte{"ca.crt": ca.PEM}),
		"kafka-user": secret("kafka-user", map[string][]byte{
			"username": []byte("gateway"), "password": []byte("s3cret\n"),
			"user.crt": p.CertPEM, "user.key": p.KeyPEM, "tls.crt": p.CertPEM, "tls.key": p.KeyPEM,
		}),
	}
	with := func(name string, key string, value []byte) map[string]*corev1.Secret {
		out := map[string]*corev1.Secret{}
		for n, s := range good {
			out[n] = s.DeepCopy()
		}
		if value == nil {
			delete(out[name].Data, key)
		} else {
			out[name].Data[key] = value
		}
		return out
	}
	type want struct {
		tls, rootCAs bool
		certs        int
		serverName   string
		mechanism    string
		err          string // the *SecretError's message; "" for none
	}
	tests := []struct {
		name    string
		kafka   v1alpha1.Kafka
		secrets map[string]*corev1.Secret
		want    want
	}{
		{"plaintext", v1alpha1.Kafka{}, nil, want{}},
		{"TLS with the system roots", v1alpha1.Kafka{TLS: &v1alpha1.KafkaTLS{}}, nil, want{tls: true}},
		{"TLS with a CA and a server name", v1alpha1.Kafka{TLS: &v1alpha1.KafkaTLS{CA: caRef, ServerName: "kafka.example.com"}}, good,
			want{tls: true, rootCAs: true, serverName: "kafka.example.com"}},
		{"mutual TLS, Strimzi's keys", v1alpha1.Kafka{TLS: &v1alpha1.KafkaTLS{CA: caRef, ClientCertificate: &v1alpha1.ClientCertificate{
			SecretName: "kafka-user", CertificateKey: "user.crt", PrivateKeyKey: "user.key"}}}, good,
			want{tls: true, rootCAs: true, certs: 1}},
		{"mutual TLS with the system roots, default keys (built in Go)", v1alpha1.Kafka{TLS: &v1alpha1.KafkaTLS{
			ClientCertificate: &v1alpha1.ClientCertificate{SecretName: "kafka-user"}}}, good,
			want{tls: true, certs: 1}},
		{"SCRAM by default", v1alpha1.Kafka{SASL: sasl("")}, good, want{mechanism: "SCRAM-SHA-512"}},
		{"SCRAM-SHA-256 over TLS", v1alpha1.Kafka{TLS: &v1alpha1.KafkaTLS{CA: caRef}, SASL: sasl(v1alpha1.SASLScramSHA256)}, good,
			want{tls: true, rootCAs: true, mechanism: "SCRAM-SHA-256"}},
		{"PLAIN", v1alpha1.Kafka{TLS: &v1alpha1.KafkaTLS{}, SASL: sasl(v1alpha1.SASLPlain)}, good, want{tls: true, mechanism: "PLAIN"}},

		{"CA Secret missing", v1alpha1.Kafka{TLS: &v1alpha1.KafkaTLS{CA: caRef}}, nil,
			want{err: `Secret "cluster-ca" (spec.kafka.tls.ca): not found`}},
		{"CA key missing", v1alpha1.Kafka{TLS: &v1alpha1.KafkaTLS{CA: caRef}}, with("cluster-ca", "ca.crt", nil),
			want{err: `Secret "cluster-ca" key "ca.crt" (spec.kafka.tls.ca): no such key`}},
		{"CA not PEM", v1alpha1.Kafka{TLS: &v1alpha1.KafkaTLS{CA: caRef}}, with("cluster-ca", "ca.crt", []byte("not a certificate")),
			want{err: `Secret "cluster-ca" key "ca.crt" (spec.kafka.tls.ca): kafka TLS: the CA bundle holds no PEM certificate`}},
		{"client key of another certificate", v1alpha1.Kafka{TLS: &v1alpha1.KafkaTLS{ClientCertificate: &v1alpha1.ClientCertificate{
			SecretName: "kafka-user", CertificateKey: "tls.crt", PrivateKeyKey: "tls.key"}}}, with("kafka-user", "tls.key", other.KeyPEM),
			want{err: `Secret "kafka-user" key "tls.crt, tls.key" (spec.kafka.tls.clientCertificate): kafka TLS: client certificate: tls: private key does not match public key`}},
		{"client key missing", v1alpha1.Kafka{TLS: &v1alpha1.KafkaTLS{ClientCertificate: &v1alpha1.ClientCertificate{
			SecretName: "kafka-user", CertificateKey: "tls.crt", PrivateKeyKey: "tls.key"}}}, with("kafka-user", "tls.key", nil),
			want{err: `Secret "kafka-user" key "tls.key" (spec.kafka.tls.clientCertificate): no such key`}},
		{"password missing", v1alpha1.Kafka{SASL: sasl("")}, with("kafka-user", "password", nil),
			want{err: `Secret "kafka-user" key "password" (spec.kafka.sasl.secretRef): no such key`}},
		{"password empty", v1alpha1.Kafka{SASL: sasl("")}, with("kafka-user", "password", []byte{}),
			want{err: `Secret "kafka-user" key "password" (spec.kafka.sasl.secretRef): empty`}},
		{"password only a line break", v1alpha1.Kafka{SASL: sasl("")}, with("kafka-user", "password", []byte("\n")),
			want{err: `Secret "kafka-user" key "username, password" (spec.kafka.sasl.secretRef): kafka SASL: the username and the password must not be empty`}},
		{"SASL Secret missing", v1alpha1.Kafka{SASL: sasl("")}, nil,
			want{err: `Secret "kafka-user" (spec.kafka.sasl.secretRef): not found`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec, err := KafkaSecurity(&tt.kafka, tt.secrets)
			if tt.want.err != "" {
				var se *SecretError
				if !errors.As(err, &se) || err.Error() != tt.want.err {
					t.Fatalf("error = %v, want the *SecretError %q", err, tt.want.err)
				}
				if kafkaReason(err) != v1alpha1.ReasonKafkaSecretInvalid {
					t.Errorf("reason %s, want KafkaSecretInvalid", kafkaReason(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got want
			if c := sec.TLS; c != nil {
				got.tls, got.rootCAs, got.certs, got.serverName = true, c.RootCAs != nil, len(c.Certificates), c.ServerName
			}
			if sec.SASL != nil {
				got.mechanism = sec.SASL.Name()
			}
			eq(t, "security", got, tt.want)
			// The gateway drops one trailing line break from the mounted file; so does the operator.
			if m, ok := sec.SASL.(plain.Mechanism); ok && m.Password != "s3cret" {
				t.Errorf("password %q, want s3cret without the line break", m.Password)
			}
		})
	}
}

// Each referenced Secret is read once; one that does not exist is left for KafkaSecurity to
// report; any other failure to read one names it.
func TestReadKafkaSecrets(t *testing.T) {
	gw := newGateway(func(gw *v1alpha1.TCPGateway) {
		gw.Spec.Kafka.TLS = &v1alpha1.KafkaTLS{
			CA:                &v1alpha1.SecretKeyReference{Name: "cluster-ca", Key: "ca.crt"},
			ClientCertificate: &v1alpha1.ClientCertificate{SecretName: "kafka-user"},
		}
		gw.Spec.Kafka.SASL = &v1alpha1.KafkaSASL{SecretRef: v1alpha1.LocalSecretReference{Name: "kafka-user"}}
	})
	var gets []string
	c := fake.NewClientBuilder().WithObjects(secret("kafka-user", nil), secret("unrelated", nil)).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets = append(gets, key.String())
			return c.Get(ctx, key, obj, opts...)
		}}).Build()
	got, err := readKafkaSecrets(context.Background(), c, gw)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "gets", gets, []string{"prod/cluster-ca", "prod/kafka-user"})
	if _, ok := got["kafka-user"]; !ok || len(got) != 1 {
		t.Errorf("read %v, want only kafka-user", got)
	}

	forbidden := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "cluster-ca", errors.New("no RBAC"))
	}}).Build()
	_, err = readKafkaSecrets(context.Background(), forbidden, gw)
	var se *SecretError
	if !errors.As(err, &se) || se.Secret != "cluster-ca" || !apierrors.IsForbidden(err) {
		t.Errorf("error = %v, want a *SecretError about cluster-ca wrapping Forbidden", err)
	}
}
