package uplink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// defaultMaxResponseBytes matches config's default Limits.MaxFrameBytes.
const defaultMaxResponseBytes = 65536

// Options tune a Router. The zero value is ready for production.
type Options struct {
	// Transport, when set, carries every route's calls (H2C routes included) instead of the
	// router's own pooled transports. For tests.
	Transport http.RoundTripper
	// MaxResponseBytes is the largest frame the server will send: pass Limits.MaxFrameBytes.
	// The router keeps room for the RESPONSE envelope and counts meta headers, then refuses a
	// body that would not fit with backend_error "response too large". Default 65536.
	MaxResponseBytes int
	// Clock measures the elapsed time reported to Observe. Default time.Now. Deadlines use the
	// real clock regardless, since the HTTP stack does.
	Clock func() time.Time
	// Observe, when set, is called exactly once per Do, after the call ends. service is the
	// route's name, or "" when no route matched: it becomes a metric label, and a client must
	// not be able to mint label values by sending made-up service names. status is 0 unless
	// code is CodeOK. It runs on the caller's goroutine, so it must be quick.
	Observe func(service string, code Code, status int, elapsed time.Duration)
}

// Router sends Calls to the backend of their service. It is safe for concurrent use.
type Router struct {
	// Immutable after NewRouter.
	routes  map[string]*route
	names   []string // sorted
	budget  int      // bytes of payload plus meta headers a Result may carry
	clock   func() time.Time
	observe func(string, Code, int, time.Duration)
	// owned are the transports this router created and so closes; empty with Options.Transport.
	owned []*http.Transport
}

// NewRouter validates routes, applies defaults to their zero fields and builds the transports.
// It rejects an empty or duplicate service, a URL that is not absolute http(s) without query
// or fragment, an H2C route on https, and negative timeouts or limits.
func NewRouter(routes []config.Route, opts Options) (*Router, error) {
	maxResp := opts.MaxResponseBytes
	switch {
	case maxResp == 0:
		maxResp = defaultMaxResponseBytes
	case maxResp <= responseOverhead:
		return nil, fmt.Errorf("MaxResponseBytes %d leaves no room for a payload (need > %d)",
			maxResp, responseOverhead)
	}
	r := &Router{
		routes:  make(map[string]*route, len(routes)),
		budget:  maxResp - responseOverhead,
		clock:   opts.Clock,
		observe: opts.Observe,
	}
	if r.clock == nil {
		r.clock = time.Now
	}
	var http1, h2c http.RoundTripper = opts.Transport, opts.Transport
	for i, rc := range routes {
		rt, err := compileRoute(rc)
		if err != nil {
			return nil, fmt.Errorf("route %d (%q): %w", i, rc.Service, err)
		}
		if _, dup := r.routes[rt.service]; dup {
			return nil, fmt.Errorf("route %d: duplicate service %q", i, rt.service)
		}
		// Transports are created only when a route needs them, one of each kind per router.
		if rc.H2C {
			if h2c == nil {
				t := newH2CTransport()
				r.owned = append(r.owned, t)
				h2c = t
			}
			rt.transport = h2c
		} else {
			if http1 == nil {
				t := newHTTP1Transport()
				r.owned = append(r.owned, t)
				http1 = t
			}
			rt.transport = http1
		}
		r.routes[rt.service] = rt
		r.names = append(r.names, rt.service)
	}
	slices.Sort(r.names)
	return r, nil
}

// Routes returns the configured service names, sorted.
func (r *Router) Routes() []string { return slices.Clone(r.names) }

// Has reports whether service has a route.
func (r *Router) Has(service string) bool {
	_, ok := r.routes[service]
	return ok
}

// InFlight returns the number of calls in flight on service's route; 0 for an unknown service.
func (r *Router) InFlight(service string) int {
	if rt, ok := r.routes[service]; ok {
		return len(rt.sem)
	}
	return 0
}

// Close closes idle backend connections. Calls in flight finish normally.
func (r *Router) Close() {
	for _, t := range r.owned {
		t.CloseIdleConnections()
	}
}

// Do sends call to its route's backend and waits for the answer, the deadline or ctx. It never
// panics and always returns a Result; any error is in Result.Code and Result.Message.
//
// An invalid method is answered with CodeNoRoute ("invalid method"): like an unknown service,
// it names nothing the gateway can route to, it is the client's mistake, and it must not count
// as a backend failure. A ctx cancelled (not timed out) by the caller gives CodeBackendError
// "call canceled", since the protocol has no code for it and no client will read it anyway.
func (r *Router) Do(ctx context.Context, call Call) Result {
	start := r.clock()
	var (
		res   Result
		label string
	)
	if rt, ok := r.routes[call.Service]; ok {
		label = rt.service
		res = r.do(ctx, rt, &call)
	} else {
		res = Result{Code: CodeNoRoute, Message: "no route for service"}
	}
	if r.observe != nil {
		r.observe(label, res.Code, res.Status, r.clock().Sub(start))
	}
	return res
}

func (r *Router) do(ctx context.Context, rt *route, call *Call) Result {
	if !validMethod(call.Method) {
		return Result{Code: CodeNoRoute, Message: "invalid method"}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if !rt.tryAcquire() {
		return Result{Code: CodeTooManyInFlight, Message: "route has too many calls in flight"}
	}
	defer rt.release()

	timeout := rt.timeout
	if call.Timeout > 0 && call.Timeout < timeout {
		timeout = call.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rt.prefix+call.Method,
		bytes.NewReader(call.Payload))
	if err != nil { // unreachable with a validated route and method; kept so Do never panics
		return Result{Code: CodeBackendError, Message: "building request: " + err.Error()}
	}
	if err := setRequestHeaders(req.Header, call); err != nil {
		return Result{Code: CodeBackendError, Message: err.Error()}
	}
	// RoundTrip rather than http.Client: redirects are the backend's answer to pass through,
	// not something the gateway should follow with a client's payload.
	resp, err := rt.transport.RoundTrip(req)
	if err != nil {
		return failure(ctx, err)
	}
	defer resp.Body.Close()

	meta, cost := metaHeaders(resp.Header)
	body, err := readBody(resp.Body, resp.ContentLength, r.budget-cost)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return Result{Code: CodeBackendError, Message: errTooLarge.Error()}
		}
		return failure(ctx, err)
	}
	return Result{Code: CodeOK, Status: resp.StatusCode, Payload: body, Headers: meta}
}
