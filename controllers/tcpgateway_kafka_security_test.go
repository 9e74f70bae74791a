package controllers

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

// The operator manages the topics over SASL_SSL (SCRAM) and mutual TLS with the material of
// the referenced Secrets, read at each reconcile; a missing Secret, a wrong password, an
// unknown CA and an expired broker certificate each surface as their own KafkaReady reason,
// against the real secured broker.
func (e *env) testKafkaSecurity(t *testing.T) {
	s := kafkatest.StartSecure(t)
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	gw.Spec.Kafka.BootstrapServers = []v1alpha1.HostPort{v1alpha1.HostPort(s.Bootstrap)}
	gw.Spec.Kafka.TLS = &v1alpha1.KafkaTLS{CA: &v1alpha1.SecretKeyReference{Name: "kafka-ca", Key: "ca.crt"}}
	gw.Spec.Kafka.SASL = &v1alpha1.KafkaSASL{SecretRef: v1alpha1.LocalSecretReference{Name: "kafka-user"}}
	if err := e.c.Create(e.ctx(t), gw); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(gw)
	// The topics are on the secured broker; remove them through its plaintext listener.
	t.Cleanup(func() {
		down, rcpt := topicNames(gw)
		_ = (&KafkaTopics{}).Delete(e.ctx(t), KafkaCluster{Brokers: []string{s.PlaintextBootstrap}}, []string{down, rcpt})
	})
	waitReason := func(reason, inMessage string) {
		t.Helper()
		e.waitGateway(t, key, func(gw *v1alpha1.TCPGateway) error {
			if err := hasCondition(v1alpha1.ConditionKafkaReady, "False", reason)(gw); err != nil {
				return err
			}
			if c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionKafkaReady); !strings.Contains(c.Message, inMessage) {
				return fmt.Errorf("KafkaReady %s message %q, want it to contain %q", reason, c.Message, inMessage)
			}
			return nil
		})
	}
	// The operator cannot watch Secrets: a changed one is seen at the next reconcile, which a
	// change of the TCPGateway (here an annotation, as docs/operator.md suggests) brings at once.
	poke := func() {
		t.Helper()
		e.update(t, key, func(gw *v1alpha1.TCPGateway) {
			metav1.SetMetaDataAnnotation(&gw.ObjectMeta, "tcpgateway.io/poke", fmt.Sprint(time.Now().UnixNano()))
		})
	}
	setSecret := func(name string, data map[string][]byte) {
		t.Helper()
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		err := e.c.Get(e.ctx(t), client.ObjectKeyFromObject(sec), sec)
		sec.Data = data
		if err == nil {
			err = e.c.Update(e.ctx(t), sec)
		} else {
			err = e.c.Create(e.ctx(t), sec)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	// No Secret yet: named in the condition and in a Warning Event; the Kubernetes objects are
	// there regardless, mounting the keys.
	waitReason(v1alpha1.ReasonKafkaSecretInvalid, `Secret "kafka-ca" (spec.kafka.tls.ca): not found`)
	eventually(t, waitTimeout, func() error {
		for _, r := range e.warningEvents(t, ns) {
			if r == v1alpha1.ReasonKafkaSecretInvalid {
				return nil
			}
		}
		return errors.New("no KafkaSecretInvalid Warning Event")
	})
	sts := &appsv1.StatefulSet{}
	e.getOwned(t, ns, "chat", sts)
	var mounted []string
	for _, src := range sts.Spec.Template.Spec.Volumes[0].Projected.Sources {
		if src.Secret != nil {
			for _, it := range src.Secret.Items {
				mounted = append(mounted, src.Secret.Name+"/"+it.Key+"->"+it.Path)
			}
		}
	}
	eq(t, "mounted Secret keys", mounted, []string{"chat-jwt/hs256.secret->keys/hs256.secret",
		"kafka-ca/ca.crt->kafka-tls/ca.crt", "kafka-user/username->kafka-sasl/username", "kafka-user/password->kafka-sasl/password"})

	setSecret("kafka-ca", map[string][]byte{"ca.crt": read(s.CAFile)})
	setSecret("kafka-user", map[string][]byte{"username": []byte(s.Username)})
	poke()
	waitReason(v1alpha1.ReasonKafkaSecretInvalid, `Secret "kafka-user" key "password" (spec.kafka.sasl.secretRef): no such key`)

	// The right password, with the line break of a file written by an editor.
	setSecret("kafka-user", map[string][]byte{"username": []byte(s.Username), "password": []byte(s.Password + "\n")})
	poke()
	e.waitGateway(t, key, hasCondition(v1alpha1.ConditionKafkaReady, "True", v1alpha1.ReasonTopicsReady))
	// All is well, and still the reconcile comes back: nothing else would tell the operator
	// that a Secret changed.
	res, err := e.reconciler(e.c, events.NewFakeRecorder(100)).Reconcile(e.ctx(t), ctrl.Request{NamespacedName: key})
	if err != nil || res != (ctrl.Result{RequeueAfter: kafkaRecheck}) {
		t.Errorf("reconcile = %+v, %v; want a recheck after %v", res, err, kafkaRecheck)
	}

	setSecret("kafka-user", map[string][]byte{"username": []byte(s.Username), "password": []byte("wrong")})
	poke()
	waitReason(v1alpha1.ReasonKafkaAuthFailed, "SASL Authentication failed")

	setSecret("kafka-user", map[string][]byte{"username": []byte(s.Username), "password": []byte(s.Password)})
	setSecret("kafka-ca", map[string][]byte{"ca.crt": read(s.OtherCAFile)})
	poke()
	waitReason(v1alpha1.ReasonKafkaTLSFailed, "certificate signed by unknown authority")

	setSecret("kafka-ca", map[string][]byte{"ca.crt": read(s.CAFile)})
	e.update(t, key, func(gw *v1alpha1.TCPGateway) {
		gw.Spec.Kafka.BootstrapServers = []v1alpha1.HostPort{v1alpha1.HostPort(s.ExpiredBootstrap)}
	})
	waitReason(v1alpha1.ReasonKafkaTLSFailed, "expired")

	// Mutual TLS (no SASL) with a client certificate under Strimzi's key names.
	setSecret("kafka-client", map[string][]byte{"user.crt": read(s.ClientCertFile), "user.key": read(s.ClientKeyFile)})
	e.update(t, key, func(gw *v1alpha1.TCPGateway) {
		gw.Spec.Kafka.BootstrapServers = []v1alpha1.HostPort{v1alpha1.HostPort(s.MTLSBootstrap)}
		gw.Spec.Kafka.SASL = nil
		gw.Spec.Kafka.TLS.ClientCertificate = &v1alpha1.ClientCertificate{SecretName: "kafka-client", CertificateKey: "user.crt", PrivateKeyKey: "user.key"}
	})
	e.waitGateway(t, key, hasCondition(v1alpha1.ConditionKafkaReady, "True", v1alpha1.ReasonTopicsReady))

	// Deleting the namespace deletes its Secrets at once: with deletionPolicy Delete and the
	// credentials gone, the TCPGateway goes anyway (the topics stay, and an Event says so)
	// rather than hold the namespace in Terminating.
	e.update(t, key, func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.DeletionPolicy = v1alpha1.TopicDeletionDelete })
	e.waitGateway(t, key, func(gw *v1alpha1.TCPGateway) error {
		if !slices.Contains(gw.Finalizers, FinalizerTopics) {
			return errors.New("no topics finalizer yet")
		}
		return nil
	})
	if err := e.c.Delete(e.ctx(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kafka-client", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Delete(e.ctx(t), &v1alpha1.TCPGateway{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitTimeout, func() error {
		err := e.c.Get(e.ctx(t), key, &v1alpha1.TCPGateway{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("TCPGateway still there: %v", err)
		}
		if !slices.Contains(e.warningEvents(t, ns), "TopicsRetained") {
			return errors.New("no TopicsRetained Warning Event")
		}
		return nil
	})
}
