// Package helmtest provides the helm binary built by hack/helm.sh for chart tests.
package helmtest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/test/repo"
)

var (
	once    sync.Once
	path    string
	pathErr error
)

// Binary returns the path of the pinned helm: $TCPGW_HELM when the Makefile set it, otherwise
// the cached build, built first when missing.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TCPGW_HELM"); p != "" {
		return p
	}
	once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		path, pathErr = repo.Script(ctx, nil, "helm.sh")
	})
	if pathErr != nil {
		t.Fatalf("helm: %v", pathErr)
	}
	return path
}
