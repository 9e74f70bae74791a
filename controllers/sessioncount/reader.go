// Package sessioncount reads how many sessions each gateway pod holds: the tcpgw_sessions
// gauge on the pod's read-only admin port (GET /metrics, the port every pod of the
// namespace may read, docs/security.md). The operator's rebalance and a custom metrics API
// use it.
//
// Every answer is hostile: a pod may be broken, compromised or not a gateway at all. A read
// is bounded in time (Reader.Timeout, for connecting, headers and body together) and size
// (Reader.MaxBytes), redirects are not followed, and a failure is an *Error with a Reason,
// counted in tcpgw_operator_session_reads_total{result}. The parsing core (Parse, Targets)
// is pure.
//
// Freshness: nothing is cached. A Count is read when Read is called and carries the time
// its answer arrived, so it is at most Timeout older than Read's return; the gateway's gauge
// itself is exact (updated at each handshake and close).
package sessioncount

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Defaults of Reader.
const (
	DefaultTimeout  = 2 * time.Second
	DefaultMaxBytes = 1 << 20 // a gateway's /metrics is tens of KiB
	DefaultParallel = 16
)

// ResultOK is the result label of a successful read.
const ResultOK = "ok"

var reads = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tcpgw_operator_session_reads_total",
	Help: "Reads of a gateway pod's session count (its tcpgw_sessions on /metrics), by result: ok, unreachable, timeout, bad_status, too_large, malformed, missing.",
}, []string{"result"})

func init() {
	metrics.Registry.MustRegister(reads)
	reads.WithLabelValues(ResultOK)
	for _, r := range Reasons() {
		reads.WithLabelValues(string(r))
	}
}

// Count is one pod's answer.
type Count struct {
	Pod string
	Sample
	// At is when the answer arrived (or the read failed).
	At time.Time
	// Err is nil or an *Error.
	Err error
}

// Reader reads counts. The zero value is ready to use with the defaults.
type Reader struct {
	// Timeout bounds one pod's read, connection to last byte. Default DefaultTimeout.
	Timeout time.Duration
	// MaxBytes bounds one pod's body. Default DefaultMaxBytes.
	MaxBytes int64
	// Parallel bounds the pods read at once. Default DefaultParallel.
	Parallel int
	// Transport, when set, replaces the Reader's own (tests).
	Transport http.RoundTripper

	once   sync.Once
	client *http.Client
}

func (r *Reader) init() {
	r.once.Do(func() {
		rt := r.Transport
		if rt == nil {
			// Not http.DefaultTransport: no proxy from the environment (pod addresses are
			// reached directly), and a small idle pool per pod.
			rt = &http.Transport{
				DialContext:         (&net.Dialer{Timeout: r.timeout()}).DialContext,
				MaxIdleConnsPerHost: 1,
				IdleConnTimeout:     90 * time.Second,
				DisableCompression:  true,
			}
		}
		r.client = &http.Client{Transport: rt,
			// A redirect could send the operator anywhere: refused as bad_status.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	})
}

func (r *Reader) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultTimeout
}

func (r *Reader) maxBytes() int64 {
	if r.MaxBytes > 0 {
		return r.MaxBytes
	}
	return DefaultMaxBytes
}

// Read reads every target, at most Parallel at a time, and returns their counts in the
// targets' order. It returns when every read ended: within Timeout per batch of Parallel.
func (r *Reader) Read(ctx context.Context, targets []Target) []Count {
	r.init()
	out := make([]Count, len(targets))
	parallel := r.Parallel
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, t := range targets {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = r.readOne(ctx, t)
		})
	}
	wg.Wait()
	return out
}

func (r *Reader) readOne(ctx context.Context, t Target) Count {
	c := Count{Pod: t.Pod}
	c.Sample, c.Err = r.fetch(ctx, t.URL)
	c.At = time.Now()
	result := ResultOK
	if c.Err != nil {
		var e *Error
		if !errors.As(c.Err, &e) {
			e = &Error{Reason: Unreachable, Err: c.Err}
			c.Err = e
		}
		result = string(e.Reason)
	}
	reads.WithLabelValues(result).Inc()
	return c
}

func (r *Reader) fetch(ctx context.Context, url string) (Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Sample{}, &Error{Reason: Unreachable, Err: err}
	}
	// The text format: what Parse reads, whatever the gateway's library prefers.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := r.client.Do(req)
	if err != nil {
		return Sample{}, classify(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Sample{}, &Error{Reason: BadStatus, Err: fmt.Errorf("%s answered %s", url, resp.Status)}
	}
	s, err := Parse(resp.Body, r.maxBytes())
	var e *Error
	if errors.As(err, &e) && e.Reason == Unreachable {
		// Parse's read of the body failed: a hang cut by the deadline is a timeout.
		return Sample{}, classify(ctx, e.Err)
	}
	return s, err
}

// classify names a transport failure: the deadline (a pod that hangs) or anything else.
func classify(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Reason: Timeout, Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{Reason: Timeout, Err: err}
	}
	return &Error{Reason: Unreachable, Err: err}
}
