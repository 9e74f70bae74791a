package controllers

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// Each TLS and credential feature adds its Secret (or ConfigMap) keys, and only those, to the
// config volume, and the configuration names the files where the volume puts them; nothing
// when the feature is off.
func TestSecretMounts(t *testing.T) {
	jwt := corev1.VolumeProjection{Secret: &corev1.SecretProjection{
		LocalObjectReference: corev1.LocalObjectReference{Name: "chat-jwt"},
		Items:                []corev1.KeyToPath{{Key: "hs256.secret", Path: "keys/hs256.secret"}},
	}}
	secretItems := func(name string, items ...corev1.KeyToPath) corev1.VolumeProjection {
		return corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Items: items}}
	}
	webhook := func(b *v1alpha1.CABundle) func(*v1alpha1.TCPGateway) {
		return func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Auth = v1alpha1.Auth{Webhook: &v1alpha1.WebhookAuth{URL: "https://auth/verify", Timeout: "2s", CABundle: b}}
		}
	}
	tests := []struct {
		name     string
		mutate   func(*v1alpha1.TCPGateway)
		sources  []corev1.VolumeProjection // after gateway.yaml
		listen   *config.ListenTLS
		kafkaTLS *config.KafkaTLS
		sasl     *config.KafkaSASL
		caFile   string
	}{
		{name: "all off", sources: []corev1.VolumeProjection{jwt}},
		{
			name: "client TLS",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.TLS = &v1alpha1.ListenerTLS{SecretName: "chat-tls", MinVersion: "1.3"}
			},
			sources: []corev1.VolumeProjection{jwt, secretItems("chat-tls", corev1.KeyToPath{Key: "tls.crt", Path: "tls/tls.crt"}, corev1.KeyToPath{Key: "tls.key", Path: "tls/tls.key"})},
			listen:  &config.ListenTLS{CertFile: "tls/tls.crt", KeyFile: "tls/tls.key", MinVersion: "1.3"},
		},
		{
			name: "Kafka TLS with the system roots mounts nothing",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Kafka.TLS = &v1alpha1.KafkaTLS{ServerName: "kafka.example.com"}
			},
			sources:  []corev1.VolumeProjection{jwt},
			kafkaTLS: &config.KafkaTLS{ServerName: "kafka.example.com"},
		},
		{
			name: "Kafka mutual TLS and SCRAM (Strimzi's Secrets)",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Kafka.TLS = &v1alpha1.KafkaTLS{
					CA:                &v1alpha1.SecretKeyReference{Name: "my-cluster-cluster-ca-cert", Key: "ca.crt"},
					ClientCertificate: &v1alpha1.ClientCertificate{SecretName: "gateway-user", CertificateKey: "user.crt", PrivateKeyKey: "user.key"},
				}
				gw.Spec.Kafka.SASL = &v1alpha1.KafkaSASL{Mechanism: v1alpha1.SASLScramSHA512,
					SecretRef: v1alpha1.LocalSecretReference{Name: "gateway-scram"}, UsernameKey: "user", PasswordKey: "password"}
			},
			sources: []corev1.VolumeProjection{jwt,
				secretItems("my-cluster-cluster-ca-cert", corev1.KeyToPath{Key: "ca.crt", Path: "kafka-tls/ca.crt"}),
				secretItems("gateway-user", corev1.KeyToPath{Key: "user.crt", Path: "kafka-tls/tls.crt"}, corev1.KeyToPath{Key: "user.key", Path: "kafka-tls/tls.key"}),
				secretItems("gateway-scram", corev1.KeyToPath{Key: "user", Path: "kafka-sasl/username"}, corev1.KeyToPath{Key: "password", Path: "kafka-sasl/password"}),
			},
			kafkaTLS: &config.KafkaTLS{CAFile: "kafka-tls/ca.crt", CertFile: "kafka-tls/tls.crt", KeyFile: "kafka-tls/tls.key"},
			sasl:     &config.KafkaSASL{Mechanism: "SCRAM-SHA-512", UsernameFile: "kafka-sasl/username", PasswordFile: "kafka-sasl/password"},
		},
		{
			name:    "webhook CA bundle from a ConfigMap",
			mutate:  webhook(&v1alpha1.CABundle{ConfigMapRef: &v1alpha1.ConfigMapKeyReference{Name: "kube-root-ca.crt", Key: "ca.crt"}}),
			sources: []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "webhook-ca/ca.crt"}}}}},
			caFile:  "webhook-ca/ca.crt",
		},
		{
			name:    "webhook CA bundle from a Secret",
			mutate:  webhook(&v1alpha1.CABundle{SecretRef: &v1alpha1.SecretKeyReference{Name: "auth-ca", Key: "bundle.pem"}}),
			sources: []corev1.VolumeProjection{secretItems("auth-ca", corev1.KeyToPath{Key: "bundle.pem", Path: "webhook-ca/ca.crt"})},
			caFile:  "webhook-ca/ca.crt",
		},
		{
			name:    "webhook with the system roots",
			mutate:  webhook(nil),
			sources: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway()
			if tt.mutate != nil {
				tt.mutate(gw)
			}
			rc := mustRender(t, gw)
			sts := StatefulSet(gw, rc)
			v := sts.Spec.Template.Spec.Volumes[0]
			eq(t, "volume", v.Name, volumeConfig)
			eq(t, "mode", *v.Projected.DefaultMode, int32(0o440))
			eq(t, "sources after gateway.yaml", v.Projected.Sources[1:], append([]corev1.VolumeProjection{}, tt.sources...))
			eq(t, "mount read-only", sts.Spec.Template.Spec.Containers[0].VolumeMounts[0],
				corev1.VolumeMount{Name: volumeConfig, MountPath: ConfigDir, ReadOnly: true})

			c := rc.Config
			eq(t, "listen.tls", c.Listen.TLS, tt.listen)
			eq(t, "kafka.tls", c.Kafka.TLS, tt.kafkaTLS)
			eq(t, "kafka.sasl", c.Kafka.SASL, tt.sasl)
			if c.Auth.Webhook != nil {
				eq(t, "auth.webhook.caFile", c.Auth.Webhook.CAFile, tt.caFile)
			}
			// Paths only: the operator never puts Secret content in the ConfigMap (the builder
			// does not even see it), and the paths are relative to the config's folder, where
			// the volume puts the files.
			for _, f := range []string{"BEGIN", "/etc/"} {
				if strings.Contains(string(rc.YAML), f) {
					t.Errorf("gateway.yaml contains %q:\n%s", f, rc.YAML)
				}
			}
		})
	}
}
