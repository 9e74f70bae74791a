//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
	"github.com/tcpgateway/tcpgateway/test/tlstest"
)

// Issue 13: a TCPGateway with TLS to its clients (spec.tls) and SCRAM over TLS to Kafka
// (spec.kafka.tls, spec.kafka.sasl) on the local cluster: the operator, with the chart's RBAC
// (get and create on Secrets, no list or watch), creates its topics on the secured broker; the pod mounts
// the Secrets' keys and is Ready; a TLS client through the LB simulator makes a request and
// gets a push published over SASL_SSL.
func TestTransportSecurity(t *testing.T) {
	s := shared(t)
	kafka := kafkatest.StartSecure(t)
	const ns, name = "e2e-tls", "secure"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	ca, err := tlstest.NewCA("e2e clients CA")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(1) // for localhost: the client names it whatever LB address it dials
	if err != nil {
		t.Fatal(err)
	}
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	kafkaCA := read(kafka.CAFile)
	secrets := []crclient.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gateway-tls"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: pair.CertPEM, corev1.TLSPrivateKeyKey: pair.KeyPEM}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kafka-ca"}, Data: map[string][]byte{"ca.crt": kafkaCA}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kafka-user"},
			Data: map[string][]byte{"username": []byte(kafka.Username), "password": []byte(kafka.Password)}},
	}
	spec := s.gatewaySpec(1)
	spec.TLS = &v1alpha1.ListenerTLS{SecretName: "gateway-tls", MinVersion: "1.2"}
	spec.Kafka.BootstrapServers = []v1alpha1.HostPort{v1alpha1.HostPort(kafka.Bootstrap)}
	spec.Kafka.TLS = &v1alpha1.KafkaTLS{CA: &v1alpha1.SecretKeyReference{Name: "kafka-ca", Key: "ca.crt"}}
	spec.Kafka.SASL = &v1alpha1.KafkaSASL{Mechanism: v1alpha1.SASLScramSHA512, SecretRef: v1alpha1.LocalSecretReference{Name: "kafka-user"}}
	gw, addr := s.apply(ctx, t, ns, name, spec, secrets...)

	// The ConfigMap names the mounted files and holds none of their content.
	cm := &corev1.ConfigMap{}
	if err := s.k.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: name + "-config"}, cm); err != nil {
		t.Fatal(err)
	}
	yaml := cm.Data["gateway.yaml"]
	for _, want := range []string{"certFile: tls/tls.crt", "caFile: kafka-tls/ca.crt", "passwordFile: kafka-sasl/password", "mechanism: SCRAM-SHA-512"} {
		if !strings.Contains(yaml, want) {
			t.Errorf("gateway.yaml lacks %q:\n%s", want, yaml)
		}
	}
	for _, secret := range []string{kafka.Password, "BEGIN"} {
		if strings.Contains(yaml, secret) {
			t.Errorf("gateway.yaml holds Secret content %q", secret)
		}
	}

	pushes := make(chan *client.Push, 16)
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	c, err := client.Connect(cctx, client.Options{
		Addr:     addr,
		Token:    token(t, "carol", nil),
		DeviceID: "carol-device",
		TLS:      &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12},
		OnPush: func(p *client.Push) {
			select {
			case pushes <- p:
			default:
			}
		},
	})
	if err != nil {
		t.Fatalf("TLS client: connect to %s: %v", addr, err)
	}
	defer c.Close()
	resp, err := c.Request(ctx, "echo", "say", []byte("over TLS"))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if got := string(resp.GetPayload()); resp.GetCode() != pb.ErrorCode_ERROR_CODE_OK || !strings.HasSuffix(got, "): over TLS") {
		t.Fatalf("request answered code=%v payload=%q", resp.GetCode(), got)
	}

	// A backend publishes over SASL_SSL with the same credentials.
	tlsCfg, err := kafkasec.TLSConfig(kafkaCA, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	mech, err := kafkasec.Mechanism(kafkasec.ScramSHA512, kafka.Username, kafka.Password)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := push.New(ctx, push.Options{Brokers: []string{kafka.Bootstrap}, Topic: gw.Status.Kafka.DownlinkTopic, TLS: tlsCfg, SASL: mech})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	start := time.Now()
	if _, err := pub.Push(ctx, push.Message{Target: push.User("carol"), Payload: []byte("secured push")}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-pushes:
		if string(p.GetPayload()) != "secured push" {
			t.Fatalf("push %q, want %q", p.GetPayload(), "secured push")
		}
		t.Logf("push over SASL_SSL delivered to the TLS client in %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(pushTimeout):
		t.Fatalf("no push within %v", pushTimeout)
	}
}
