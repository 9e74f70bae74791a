package browser

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/test/repo"
)

// The harness itself: Debian's chromium from hack/chromium.sh starts headless, loads a page
// from 127.0.0.1, runs its script and the test reads the result through the DevTools protocol
// as State; closing the browser leaves none of its processes.
func TestChromiumRunsAPageAndLeavesNoProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; not in -short")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		// A bigint and a computed value: the page's script really ran in this browser.
		_, _ = w.Write([]byte(`<!doctype html><script>
			window.tcpgwState = {phase: "connected", pushes: [{id: "p-" + (40 + 2), offset: String(2n ** 40n)}]};
		</script>`))
	}))
	defer srv.Close()
	b := Launch(t)
	tab := b.Open(srv.URL)
	s := tab.WaitState(t, 10*time.Second, "the page's state", func(s State) bool { return s.Phase == "connected" })
	if got := s.IDs(); len(got) != 1 || got[0] != "p-42" || s.Pushes[0].Offset != "1099511627776" {
		t.Fatalf("state %+v, want one push p-42 at offset 2^40", s)
	}
	pids := b.pids()
	if len(pids) == 0 {
		t.Fatal("no process runs with the browser's profile")
	}
	b.Close()
	if left := b.pids(); len(left) > 0 {
		t.Fatalf("processes %v of the browser (of %v) still run after Close", left, pids)
	}
}

// The bundler refuses a page that reaches a Node.js module: the SDK's browser entry point
// must not, and a web app's bundler would refuse it the same way.
func TestBundleRefusesNodeModules(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	entry := filepath.Join(t.TempDir(), "page.js")
	if err := os.WriteFile(entry, []byte(`import * as net from "node:net"; console.log(net.connect);`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = buildPage(root, entry)
	if err == nil || !strings.Contains(err.Error(), "node:net") {
		t.Fatalf("bundling a page importing node:net: err %v, want one naming node:net", err)
	}
}
