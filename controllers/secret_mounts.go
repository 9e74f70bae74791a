package controllers

import (
	"path"

	corev1 "k8s.io/api/core/v1"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// Where the gateway pods see the TLS material and credentials the spec references, relative
// to ConfigDir. Each is a folder of the one projected volume mounted at ConfigDir (see
// volumes) holding only the keys the spec names, under fixed file names whatever the Secret
// keys are called: gateway.yaml names these files and never holds their content.
const (
	// ListenTLSDir holds spec.tls: tls.crt and tls.key (gateway listen.tls).
	ListenTLSDir = "tls"
	// KafkaTLSDir holds spec.kafka.tls: ca.crt, and tls.crt and tls.key for mutual TLS
	// (gateway kafka.tls).
	KafkaTLSDir = "kafka-tls"
	// KafkaSASLDir holds spec.kafka.sasl: username and password (gateway kafka.sasl).
	KafkaSASLDir = "kafka-sasl"
	// WebhookCADir holds spec.auth.webhook.caBundle: ca.crt (gateway auth.webhook.caFile).
	WebhookCADir = "webhook-ca"

	fileCA       = "ca.crt"
	fileCert     = "tls.crt"
	fileKey      = "tls.key"
	fileUsername = "username"
	filePassword = "password"
)

// Files of the mounted material, relative to ConfigDir, as gateway.yaml names them (the
// gateway resolves them against its config file's folder, so the config holds no absolute
// path and works wherever the volume is mounted).
var (
	listenCertFile = path.Join(ListenTLSDir, fileCert)
	listenKeyFile  = path.Join(ListenTLSDir, fileKey)
	kafkaCAFile    = path.Join(KafkaTLSDir, fileCA)
	kafkaCertFile  = path.Join(KafkaTLSDir, fileCert)
	kafkaKeyFile   = path.Join(KafkaTLSDir, fileKey)
	kafkaUserFile  = path.Join(KafkaSASLDir, fileUsername)
	kafkaPassFile  = path.Join(KafkaSASLDir, filePassword)
	webhookCAFile  = path.Join(WebhookCADir, fileCA)
)

// secretProjections are the Secret and ConfigMap keys the spec references, each projected
// with explicit items (so a pod gets only the keys it needs, never a whole Secret) into its
// folder of the config volume. Nothing when the features are off.
func secretProjections(gw *v1alpha1.TCPGateway) []corev1.VolumeProjection {
	var out []corev1.VolumeProjection
	secret := func(name string, items ...corev1.KeyToPath) {
		out = append(out, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: name},
			Items:                items,
		}})
	}
	item := func(key v1alpha1.SecretKeyName, def v1alpha1.SecretKeyName, file string) corev1.KeyToPath {
		return corev1.KeyToPath{Key: string(orDefault(key, def)), Path: file}
	}
	s := &gw.Spec
	if t := s.TLS; t != nil {
		secret(t.SecretName,
			corev1.KeyToPath{Key: corev1.TLSCertKey, Path: listenCertFile},
			corev1.KeyToPath{Key: corev1.TLSPrivateKeyKey, Path: listenKeyFile})
	}
	if t := s.Kafka.TLS; t != nil {
		if t.CA != nil {
			secret(t.CA.Name, item(t.CA.Key, "", kafkaCAFile))
		}
		if c := t.ClientCertificate; c != nil {
			secret(c.SecretName,
				item(c.CertificateKey, "tls.crt", kafkaCertFile),
				item(c.PrivateKeyKey, "tls.key", kafkaKeyFile))
		}
	}
	if sasl := s.Kafka.SASL; sasl != nil {
		secret(sasl.SecretRef.Name,
			item(sasl.UsernameKey, "username", kafkaUserFile),
			item(sasl.PasswordKey, "password", kafkaPassFile))
	}
	if w := s.Auth.Webhook; w != nil && w.CABundle != nil {
		switch b := w.CABundle; {
		case b.SecretRef != nil:
			secret(b.SecretRef.Name, item(b.SecretRef.Key, "", webhookCAFile))
		case b.ConfigMapRef != nil:
			out = append(out, corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: b.ConfigMapRef.Name},
				Items:                []corev1.KeyToPath{item(b.ConfigMapRef.Key, "", webhookCAFile)},
			}})
		}
	}
	return out
}
