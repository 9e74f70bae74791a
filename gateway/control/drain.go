package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DrainPath is the control socket's drain endpoint: POST starts the drain (idempotent) and
// answers 202 at once; with ?wait=true it answers 200 only once the drain finished.
const DrainPath = "/drain"

// Drainer is what the control socket drives: the gateway's drain, which runs once; later
// calls wait for the first. It returns when the drain finished or ctx is done.
type Drainer interface {
	Drain(ctx context.Context) error
}

// Handler serves the control socket: the drain, the rebalance (rebalance.go) and the
// read-only session listing (sessions.go).
func Handler(d Gateway) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+SessionsPath, handleSessions(d))
	mux.HandleFunc("POST "+RebalancePath, handleRebalance(d))
	mux.HandleFunc("POST "+DrainPath, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") != "true" {
			// Not r's context: the drain outlives this request.
			go func() { _ = d.Drain(context.Background()) }()
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, "draining\n")
			return
		}
		if err := d.Drain(r.Context()); err != nil {
			http.Error(w, "drain still running: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "drained\n")
	})
	return mux
}

// NewServer is the HTTP server for Handler(d). A drain with wait=true takes as long as the
// drain, so there is no write timeout; the socket is pod-local and mode 0600.
func NewServer(d Gateway) *http.Server {
	return &http.Server{Handler: Handler(d), ReadHeaderTimeout: 5 * time.Second}
}

// Drain asks the gateway serving the control socket at path to drain. With wait it returns
// once the drain finished (or ctx ended); without, once the drain started. It returns the
// gateway's answer ("draining" or "drained").
func Drain(ctx context.Context, path string, wait bool) (string, error) {
	hc := socketClient(path)
	u := "http://control" + DrainPath
	if wait {
		u += "?" + url.Values{"wait": {"true"}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", dialError(path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	answer := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return answer, fmt.Errorf("gateway answered %s: %s", resp.Status, answer)
	}
	return answer, nil
}

// socketClient speaks HTTP over the unix socket at path.
func socketClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}
}

// dialError says plainly when nobody answers on the socket.
func dialError(path string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("no gateway answers on the control socket %s (is it running, with this listen.control?): %w", path, err)
	}
	return err
}
