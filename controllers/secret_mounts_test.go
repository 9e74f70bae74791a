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
	tests := []struct {
		name     string
		mutate   func(*v1alpha1.TCPGateway)
		sources  []corev1.VolumeProjection // after gateway.yaml
		kafkaTLS *config.KafkaTLS
		sasl     *config.KafkaSASL
	}{
		{name: "all off", sources: []corev1.VolumeProjection{jwt}},
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
			eq(t, "kafka.tls", c.Kafka.TLS, tt.kafkaTLS)
			eq(t, "kafka.sasl", c.Kafka.SASL, tt.sasl)
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
