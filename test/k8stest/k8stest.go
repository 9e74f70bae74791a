// Package k8stest starts a real control plane (etcd and kube-apiserver built by hack/k8s.sh)
// through controller-runtime's envtest, with the project's CRDs installed.
//
// The Makefile builds the binaries once and exports KUBEBUILDER_ASSETS; when that variable is
// absent (plain `go test`), Assets builds or reuses them through hack/k8s.sh, which takes about
// ten minutes on a cold machine and well under a second afterwards.
package k8stest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tcpgateway/tcpgateway/test/repo"
)

// buildTimeout bounds a cold build of the control plane binaries.
const buildTimeout = 30 * time.Minute

var (
	assetsOnce sync.Once
	assetsDir  string
	assetsErr  error
)

// Assets returns the directory holding etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kubectl.
func Assets(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	assetsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		assetsDir, assetsErr = repo.Script(ctx, nil, "k8s.sh")
	})
	if assetsErr != nil {
		t.Fatalf("control plane binaries: %v", assetsErr)
	}
	return assetsDir
}

// Start runs etcd and kube-apiserver for the duration of the test, with every CRD found in
// config/crd/bases installed, and returns the admin client configuration.
func Start(t testing.TB) *rest.Config {
	t.Helper()
	env, err := NewEnvironment(Assets(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop() // a start that failed part-way may leave processes running
		t.Fatalf("starting kube-apiserver and etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping kube-apiserver and etcd: %v", err)
		}
	})
	return cfg
}

// NewEnvironment describes a control plane run from the binaries in assetsDir, with every CRD
// found in config/crd/bases installed at start.
func NewEnvironment(assetsDir string) (*envtest.Environment, error) {
	top, err := repo.Root()
	if err != nil {
		return nil, err
	}
	return &envtest.Environment{
		BinaryAssetsDirectory: assetsDir,
		CRDDirectoryPaths:     []string{filepath.Join(top, "config", "crd", "bases")},
		// The directory is empty until the operator's API exists; that is not an error.
		ErrorIfCRDPathMissing: false,
	}, nil
}
