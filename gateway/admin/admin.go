// Package admin serves the gateway's operational HTTP endpoints on their own port:
// /healthz (the process is alive), /readyz (it should get new connections), /metrics and
// /status (JSON). The port is reachable from other pods (probes, scraping), so everything
// on it is read-only: GET and HEAD only (405 otherwise), 404 for any other path. What
// changes the gateway (drain) is on the pod-local control socket (gateway/control), and
// pprof on its own loopback listener (Pprof). The one exception, only with
// listen.rebalanceKeyFile, is POST /rebalance, which accepts only requests signed with that
// key (gateway/rebalance).
package admin

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition: it returns "" when satisfied, otherwise a short
// lower_snake reason ("draining", "kafka_unreachable", "topics_missing") shown by /readyz.
type Check func() string

// Options are what the endpoints report.
type Options struct {
	Gatherer prometheus.Gatherer
	// Ready lists the readiness checks, all of which must pass.
	Ready []Check
	// Status returns the /status document.
	Status func() any
	// Rebalance, when set, serves POST /rebalance: the operator's signed request to move
	// sessions away, which the handler authenticates itself (gateway/rebalance). Nil: 404.
	Rebalance http.Handler
}

// Handler builds the admin mux. A "GET /path" pattern also answers HEAD; ServeMux answers
// 405 with an Allow header for other methods on a known path, 404 for unknown paths.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		var reasons []string
		for _, check := range o.Ready {
			if r := check(); r != "" {
				reasons = append(reasons, r)
			}
		}
		if len(reasons) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + strings.Join(reasons, ", ") + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(o.Status())
	})
	if o.Rebalance != nil {
		mux.Handle("POST /rebalance", o.Rebalance)
	}
	return mux
}

// Pprof is net/http/pprof's endpoints under /debug/pprof/, for the loopback-only listener
// of listen.pprof (gateway/config refuses any other address).
func Pprof() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
