package k8stest_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/test/k8stest"
)

// wantVersion is the Kubernetes release pinned in hack/tools/k8s/go.mod.
const wantVersion = "v1.37.2"

// The binaries are real builds of the pinned release, with a truthful version.
func TestBinariesReportPinnedVersion(t *testing.T) {
	dir := k8stest.Assets(t)
	for _, bin := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		out, err := exec.Command(filepath.Join(dir, bin), "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --version: %v\n%s", bin, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != "Kubernetes "+wantVersion {
			t.Errorf("%s --version = %q, want %q", bin, got, "Kubernetes "+wantVersion)
		}
	}
	out, err := exec.Command(filepath.Join(dir, "etcd"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "etcd Version: 3.6.") {
		t.Errorf("etcd --version: %v\n%s", err, out)
	}
}

// A real API server stores an object in a real etcd and serves it back.
func TestControlPlaneStoresObjects(t *testing.T) {
	cfg := k8stest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dc.ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if info.GitVersion != wantVersion {
		t.Errorf("server version = %s, want %s", info.GitVersion, wantVersion)
	}

	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: "default"},
		Data:       map[string]string{"written-at": time.Now().UTC().Format(time.RFC3339Nano)},
	}
	if err := c.Create(ctx, want); err != nil {
		t.Fatalf("create: %v", err)
	}
	var got corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKeyFromObject(want), &got); err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Data["written-at"] != want.Data["written-at"] || got.UID == "" || got.ResourceVersion == "" {
		t.Errorf("read back %+v, want data %v with a UID and resourceVersion from the server", got, want.Data)
	}
}
