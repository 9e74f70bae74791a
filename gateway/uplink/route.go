package uplink

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// Defaults for zero route fields, the same as config.Default applies; repeated here so a Router
// built from an undefaulted config still has a bounded timeout and in-flight limit.
const (
	defaultRouteTimeout = 5 * time.Second
	defaultMaxInFlight  = 1024
	// maxMethodLen bounds the path suffix (and the X-Tcpgw-Method header) sent to backends.
	maxMethodLen = 256
)

// route is a config.Route made ready for calls. Immutable after NewRouter, except sem.
type route struct {
	service string
	// prefix is the route URL with exactly one trailing slash; the method is appended.
	prefix    string
	timeout   time.Duration
	transport http.RoundTripper
	// sem holds one token per call in flight; its capacity is MaxInFlight. A channel gives an
	// exact, non-blocking try-acquire (select with default) and len for the gauge.
	sem chan struct{}
}

// compileRoute checks one config.Route and applies defaults to its zero fields.
func compileRoute(rc config.Route) (*route, error) {
	if rc.Service == "" {
		return nil, errors.New("service is empty")
	}
	u, err := url.Parse(rc.URL)
	if err != nil {
		return nil, fmt.Errorf("while parsing url: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("url %q: scheme must be http or https", rc.URL)
	case rc.H2C && u.Scheme != "http":
		return nil, fmt.Errorf("url %q: h2c needs an http:// url", rc.URL)
	case u.Host == "":
		return nil, fmt.Errorf("url %q: no host", rc.URL)
	case u.User != nil:
		return nil, fmt.Errorf("url %q: credentials in the url are not supported", rc.URL)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		// The method is appended to the path; a query or fragment would end up before it.
		return nil, fmt.Errorf("url %q: must not have a query or fragment", rc.URL)
	}
	timeout := rc.Timeout.Duration
	switch {
	case timeout < 0:
		return nil, fmt.Errorf("timeout %v is negative", timeout)
	case timeout == 0:
		timeout = defaultRouteTimeout
	}
	maxInFlight := rc.MaxInFlight
	switch {
	case maxInFlight < 0:
		return nil, fmt.Errorf("maxInFlight %d is negative", maxInFlight)
	case maxInFlight == 0:
		maxInFlight = defaultMaxInFlight
	}
	return &route{
		service: rc.Service,
		prefix:  strings.TrimRight(rc.URL, "/") + "/",
		timeout: timeout,
		sem:     make(chan struct{}, maxInFlight),
	}, nil
}

// tryAcquire takes an in-flight slot without waiting; false means the route is full.
func (rt *route) tryAcquire() bool {
	select {
	case rt.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (rt *route) release() { <-rt.sem }

// validMethod reports whether m can be appended to a route URL as is: one or more non-empty
// '/'-separated segments of [A-Za-z0-9._-], none of them "." or "..", so a client can neither
// escape the route's path prefix nor need any escaping.
func validMethod(m string) bool {
	if m == "" || len(m) > maxMethodLen {
		return false
	}
	for seg := range strings.SplitSeq(m, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == '.' || c == '_' || c == '-'
			if !ok {
				return false
			}
		}
	}
	return true
}
