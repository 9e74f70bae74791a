package browser

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evanw/esbuild/pkg/api"

	"github.com/tcpgateway/tcpgateway/test/repo"
)

// SDKEntry is the TypeScript SDK's browser entry point, relative to the repository: the page
// imports it as the package "@tcpgateway/client", as a web app bundling the SDK would.
const SDKEntry = "sdk/ts/src/browser.ts"

// pageScript is the page's script, relative to the repository.
const pageScript = "test/browser/page/page.js"

//go:embed page/index.html
var indexHTML []byte

var (
	bundleOnce sync.Once
	bundleJS   []byte
	bundleErr  error
)

// Bundle builds the page's script and the SDK into one browser script with esbuild (once per
// test binary). The SDK's dependencies come from sdk/ts/node_modules (hack/ts.sh deps, run
// here). The build is for the browser platform: a node: import reachable from the SDK's browser
// entry point fails it, as it would fail a web app's bundler.
func Bundle(t testing.TB) []byte {
	t.Helper()
	bundleOnce.Do(func() { bundleJS, bundleErr = bundle() })
	if bundleErr != nil {
		t.Fatalf("bundling the browser page: %v", bundleErr)
	}
	return bundleJS
}

func bundle() ([]byte, error) {
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := repo.Script(ctx, nil, "ts.sh", "deps"); err != nil {
		return nil, err
	}
	return buildPage(root, filepath.Join(root, pageScript))
}

// buildPage bundles entry (a page script importing "@tcpgateway/client") with the SDK's browser
// entry point of the repository at root.
func buildPage(root, entry string) ([]byte, error) {
	res := api.Build(api.BuildOptions{
		EntryPoints:   []string{entry},
		AbsWorkingDir: root,
		Bundle:        true,
		Write:         false,
		Outdir:        filepath.Join(root, "_output", "browser"), // names the output; nothing is written
		Platform:      api.PlatformBrowser,
		Format:        api.FormatESModule,
		Target:        api.ES2022, // bigint literals (positions are int64)
		Alias:         map[string]string{"@tcpgateway/client": "./" + SDKEntry},
		LogLevel:      api.LogLevelSilent,
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, errors.New(strings.Join(msgs, ""))
	}
	if len(res.OutputFiles) != 1 {
		return nil, fmt.Errorf("esbuild wrote %d files, want 1", len(res.OutputFiles))
	}
	return res.OutputFiles[0].Contents, nil
}

// Config is what the page reads from config.json before it connects.
type Config struct {
	URL           string `json:"url"`   // the gateway's WebSocket URL, ws://host:port/path
	Token         string `json:"token"` // the session's token
	ClientVersion string `json:"clientVersion"`
	// Reconnect backoff of the SDK, in milliseconds (0: the SDK's default).
	ReconnectInitialMs int `json:"reconnectInitialMs,omitempty"`
	ReconnectMaxMs     int `json:"reconnectMaxMs,omitempty"`
}

// Server serves the page on 127.0.0.1: index.html, page.js (the bundle) and config.json.
type Server struct {
	*httptest.Server
	mu   sync.Mutex
	conf []byte // config.json
}

// Serve starts the page's server; it stops with the test. The page's origin (what the
// browser sends as Origin to the gateway) is the server's URL.
func Serve(t testing.TB, cfg Config) *Server {
	t.Helper()
	js := Bundle(t)
	s := &Server{}
	s.SetConfig(t, cfg)
	mux := http.NewServeMux()
	serve := func(path, ctype string, body func() []byte) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(body())
		})
	}
	serve("/{$}", "text/html; charset=utf-8", func() []byte { return indexHTML })
	serve("/page.js", "text/javascript; charset=utf-8", func() []byte { return js })
	serve("/config.json", "application/json", func() []byte {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.conf
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// SetConfig replaces what config.json says, for pages loaded from now on: a test that must
// know the page's origin before the gateway's address serves the page first.
func (s *Server) SetConfig(t testing.TB, cfg Config) {
	t.Helper()
	conf, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conf = conf
}

// Origin is the Origin header the browser sends from the page.
func (s *Server) Origin() string { return s.URL }
