//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Issue items 1 and 4: apply, Ready with an LB address, clients through the LB, a request to
// the backend, user and broadcast pushes; delete, and the garbage collector removes the rest.
func TestApplyConnectPushDelete(t *testing.T) {
	s := shared(t)
	const ns, gwName = "e2e-apply", "chat"
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	k := s.k
	gw, addr := s.apply(ctx, t, ns, gwName, s.gatewaySpec(2))
	applied := time.Now()
	if gw.Status.Kafka == nil || gw.Status.Kafka.DownlinkTopic != ns+"."+gwName+".downlink" {
		t.Fatalf("status.kafka = %+v, want downlinkTopic %s.%s.downlink", gw.Status.Kafka, ns, gwName)
	}

	// 3. Connect two clients through the load balancer.
	type app struct {
		c      *client.Client
		pushes chan *client.Push
	}
	connect := func(user string) *app {
		a := &app{pushes: make(chan *client.Push, 16)}
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		var err error
		a.c, err = client.Connect(cctx, client.Options{
			Addr:     addr,
			Token:    token(t, user, nil),
			DeviceID: user + "-device",
			OnPush: func(p *client.Push) {
				select {
				case a.pushes <- p:
				default:
				}
			},
		})
		if err != nil {
			t.Fatalf("client %s: connect to %s: %v", user, addr, err)
		}
		t.Cleanup(func() { _ = a.c.Close() })
		return a
	}
	t2 := time.Now()
	alice, bob := connect("alice"), connect("bob")
	t.Logf("two clients connected to %s in %v", addr, time.Since(t2).Round(time.Millisecond))

	resp, err := alice.c.Request(ctx, "echo", "say", []byte("hello"))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	// test/echobackend echoes the payload with the caller's identity, as the gateway forwarded it.
	if got := string(resp.GetPayload()); resp.GetCode() != pb.ErrorCode_ERROR_CODE_OK ||
		!strings.HasPrefix(got, "POST /say from user alice (session ") || !strings.HasSuffix(got, "): hello") {
		t.Fatalf("request answered code=%v status=%d payload=%q", resp.GetCode(), resp.GetStatus(), resp.GetPayload())
	}

	pub, err := push.New(ctx, push.Options{Brokers: []string{s.brokers}, Topic: gw.Status.Kafka.DownlinkTopic})
	if err != nil {
		t.Fatal(err)
	}
	expect := func(a *app, who, payload string) {
		t.Helper()
		timer := time.NewTimer(pushTimeout)
		defer timer.Stop()
		for {
			select {
			case p := <-a.pushes:
				if string(p.GetPayload()) == payload {
					return
				}
				t.Errorf("%s got unexpected push %q while waiting for %q", who, p.GetPayload(), payload)
			case <-timer.C:
				t.Fatalf("%s did not get push %q within %v", who, payload, pushTimeout)
			}
		}
	}
	t3 := time.Now()
	if _, err := pub.Push(ctx, push.Message{Target: push.User("bob"), Payload: []byte("for bob")}); err != nil {
		t.Fatal(err)
	}
	expect(bob, "bob", "for bob")
	t.Logf("user push delivered in %v", time.Since(t3).Round(time.Millisecond))
	select {
	case p := <-alice.pushes:
		t.Fatalf("alice got bob's push %q", p.GetPayload())
	default:
	}
	if _, err := pub.Push(ctx, push.Message{Target: push.All(), Payload: []byte("to all")}); err != nil {
		t.Fatal(err)
	}
	expect(alice, "alice", "to all")
	expect(bob, "bob", "to all")
	_ = alice.c.Close()
	_ = bob.c.Close()

	// 4. Delete: the garbage collector removes the owned objects, the pods and their processes.
	t4 := time.Now()
	if err := k.Delete(ctx, gw); err != nil {
		t.Fatal(err)
	}
	gone := func(obj crclient.Object, name string) func(context.Context) bool {
		return func(ctx context.Context) bool {
			err := k.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: name}, obj)
			return apierrors.IsNotFound(err)
		}
	}
	for _, w := range []struct {
		what string
		cond func(context.Context) bool
	}{
		{"TCPGateway", gone(&v1alpha1.TCPGateway{}, gwName)},
		{"StatefulSet", gone(&appsv1.StatefulSet{}, gwName)},
		{"client Service", gone(&corev1.Service{}, gwName)},
		{"headless Service", gone(&corev1.Service{}, gwName+"-headless")},
		{"ConfigMap", gone(&corev1.ConfigMap{}, gwName+"-config")},
		{"PodDisruptionBudget", gone(&policyv1.PodDisruptionBudget{}, gwName)},
		{"pods", func(ctx context.Context) bool {
			var pods corev1.PodList
			return k.List(ctx, &pods, crclient.InNamespace(ns)) == nil && len(pods.Items) == 0
		}},
		{"gateway processes", func(context.Context) bool { return len(s.terminations(ns)) == 2 }},
	} {
		if d, ok := poll(ctx, deleteTimeout-time.Since(t4), w.cond); !ok {
			s.dumpPods(t, ns)
			t.Fatalf("%s still present %v after the delete", w.what, d.Round(time.Millisecond))
		}
		t.Logf("%s gone %v after the delete", w.what, time.Since(t4).Round(time.Millisecond))
	}
	checkGraceful(t, s.terminations(ns))
	t.Logf("total from apply to everything gone: %v", time.Since(applied).Round(time.Millisecond))
}
