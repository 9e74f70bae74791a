package custommetrics

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tcpgateway/tcpgateway/test/k8stest"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// The server against a real kube-apiserver: every request is authenticated by delegation
// (here a client certificate of the kube-apiserver's client CA, which the server reads from
// kube-system/extension-apiserver-authentication) and authorized by a SubjectAccessReview. An
// anonymous caller and an authenticated one without RBAC get nothing; an admin gets the
// values.
func TestServerAuthenticatesAndAuthorizes(t *testing.T) {
	if testing.Short() {
		t.Skip("real kube-apiserver; skipped under -short")
	}
	env, err := k8stest.NewEnvironment(k8stest.Assets(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Start(); err != nil {
		_ = env.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	user := func(name string, groups ...string) *rest.Config {
		u, err := env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return u.Config()
	}
	admin, nobody := user("metrics-admin", "system:masters"), user("nobody")
	kc, err := env.AddUser(envtest.User{Name: "custom-metrics-server", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := kc.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kcFile := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kcFile, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	chat := map[string]string{"app.kubernetes.io/instance": "chat"}
	p := &Provider{Pods: fake.NewClientBuilder().WithObjects(pod("prod", "chat-0", chat, true)).Build(),
		Counter: &fakeCounter{sessions: map[string]int64{"chat-0": 42}}, PortName: "admin"}
	srv, err := NewServer(ServerOptions{BindAddress: "127.0.0.1", Port: port, Kubeconfig: kcFile}, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the server did not stop within 30s")
		}
	})

	url := fmt.Sprintf("https://127.0.0.1:%d/apis/custom.metrics.k8s.io/v1beta2/namespaces/prod/pods/%%2A/tcpgw_sessions?labelSelector=app.kubernetes.io%%2Finstance%%3Dchat", port)
	get := func(cfg *rest.Config) (int, string) {
		tlsCfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the server's self-signed certificate; the test is about the client side
		if cfg != nil {
			cert, err := tls.X509KeyPair(cfg.CertData, cfg.KeyData)
			if err != nil {
				t.Fatal(err)
			}
			tlsCfg.Certificates = []tls.Certificate{cert}
		}
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
		resp, err := hc.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(body)
	}
	var code int
	var body string
	// Until the server listens and has read the authentication ConfigMap.
	wait.For(t, 60*time.Second, "the admin's request to succeed", func() bool {
		code, body = get(admin)
		return code == http.StatusOK
	})
	if want := `"value":"42"`; !strings.Contains(body, want) || !strings.Contains(body, `"name":"chat-0"`) {
		t.Errorf("admin got %s, want chat-0 with %s", body, want)
	}
	if code, body := get(nobody); code != http.StatusForbidden {
		t.Errorf("a user without RBAC: %d %s, want 403", code, body)
	}
	// Anonymous requests are system:anonymous, which the SubjectAccessReview refuses.
	if code, body := get(nil); code != http.StatusForbidden || !strings.Contains(body, `User \"system:anonymous\"`) {
		t.Errorf("anonymous: %d %s, want 403 for system:anonymous", code, body)
	}
}
