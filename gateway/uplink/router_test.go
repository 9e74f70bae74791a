package uplink_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/uplink"
)

// waitLimit bounds every wait in these tests so a bug fails the test instead of hanging it.
const waitLimit = 10 * time.Second

// newBackend starts an HTTP/1.1 backend on 127.0.0.1.
func newBackend(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newH2CBackend starts a backend that also accepts HTTP/2 over cleartext (prior knowledge).
func newH2CBackend(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func newRouter(t testing.TB, routes []config.Route, opts uplink.Options) *uplink.Router {
	t.Helper()
	r, err := uplink.NewRouter(routes, opts)
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

func route(service, url string) config.Route { return config.Route{Service: service, URL: url} }

// echo answers 200 with the request body.
func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	_, _ = w.Write(body)
}

// waitFor receives from ch or fails the test after waitLimit.
func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func wantCode(t testing.TB, res uplink.Result, code uplink.Code) {
	t.Helper()
	if res.Code != code {
		t.Fatalf("code = %q (message %q), want %q", res.Code, res.Message, code)
	}
}

func TestDoRoundTrip(t *testing.T) {
	type seen struct {
		method, path, proto string
		header              http.Header
		body                string
	}
	got := make(chan seen, 1)
	srv := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.Proto, r.Header.Clone(), string(body)}
		w.Header().Set("X-Tcpgw-Meta-Reply-Id", "r-7")
		w.Header().Add("X-Tcpgw-Meta-Tag", "a")
		w.Header().Add("X-Tcpgw-Meta-Tag", "b")
		w.Header().Set("X-Not-Meta", "hidden")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("pong:" + string(body)))
	})
	r := newRouter(t, []config.Route{route("chat", srv.URL+"/api/")}, uplink.Options{})

	res := r.Do(context.Background(), uplink.Call{
		Service: "chat",
		Method:  "v1/rooms.join",
		Payload: []byte("ping"),
		Headers: map[string]string{"Trace-Id": "t-1", "bad key": "dropped"},
		Identity: uplink.Identity{
			UserID: "user-1", SessionID: "sess-1", DeviceID: "dev-1", ClientAddress: "127.0.0.1:40000", Seq: 99,
		},
	})
	wantCode(t, res, uplink.CodeOK)
	if res.Status != http.StatusCreated || string(res.Payload) != "pong:ping" {
		t.Errorf("status %d payload %q, want 201 %q", res.Status, res.Payload, "pong:ping")
	}
	wantMeta := map[string]string{"reply-id": "r-7", "tag": "a, b"}
	if fmt.Sprint(res.Headers) != fmt.Sprint(wantMeta) {
		t.Errorf("result headers = %v, want %v", res.Headers, wantMeta)
	}

	s := waitFor(t, got, "backend request")
	if s.method != http.MethodPost || s.path != "/api/v1/rooms.join" || s.body != "ping" {
		t.Errorf("backend saw %s %s %q", s.method, s.path, s.body)
	}
	for name, want := range map[string]string{
		"Content-Type":           "application/octet-stream",
		"X-Tcpgw-User":           "user-1",
		"X-Tcpgw-Session":        "sess-1",
		"X-Tcpgw-Device":         "dev-1",
		"X-Tcpgw-Client-Address": "127.0.0.1:40000",
		"X-Tcpgw-Seq":            "99",
		"X-Tcpgw-Method":         "v1/rooms.join",
		"X-Tcpgw-Meta-Trace-Id":  "t-1",
	} {
		if v := s.header.Get(name); v != want {
			t.Errorf("backend header %s = %q, want %q", name, v, want)
		}
	}
	for name := range s.header {
		if strings.HasPrefix(name, uplink.HeaderMetaPrefix) && name != "X-Tcpgw-Meta-Trace-Id" {
			t.Errorf("backend got unexpected meta header %s", name)
		}
	}
	if r.InFlight("chat") != 0 {
		t.Errorf("InFlight after the call = %d, want 0", r.InFlight("chat"))
	}

	// Close only drops idle connections: the router keeps working.
	r.Close()
	res = r.Do(context.Background(), uplink.Call{Service: "chat", Method: "again"})
	wantCode(t, res, uplink.CodeOK)
	<-got
}

func TestDoPassesAnyStatusThrough(t *testing.T) {
	var hits atomic.Int32
	srv := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		var status int
		_, _ = fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/"), &status)
		if status == http.StatusTemporaryRedirect {
			w.Header().Set("Location", "/200")
		}
		w.WriteHeader(status)
		if status != http.StatusNoContent {
			_, _ = fmt.Fprintf(w, "body %d", status)
		}
	})
	r := newRouter(t, []config.Route{route("svc", srv.URL)}, uplink.Options{})

	for _, tt := range []struct {
		status int
		body   string
	}{
		{200, "body 200"},
		{204, ""},
		{307, "body 307"}, // not followed: the redirect is the backend's answer
		{404, "body 404"},
		{500, "body 500"},
		{503, "body 503"},
	} {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			before := hits.Load()
			res := r.Do(context.Background(), uplink.Call{Service: "svc", Method: fmt.Sprint(tt.status)})
			wantCode(t, res, uplink.CodeOK)
			if res.Status != tt.status || string(res.Payload) != tt.body || res.Message != "" {
				t.Errorf("got %d %q %q, want %d %q", res.Status, res.Payload, res.Message, tt.status, tt.body)
			}
			if n := hits.Load() - before; n != 1 {
				t.Errorf("backend hit %d times, want 1", n)
			}
		})
	}
}

func TestDoRefusesBeforeCallingBackend(t *testing.T) {
	var hits atomic.Int32
	srv := newBackend(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	r := newRouter(t, []config.Route{route("svc", srv.URL)}, uplink.Options{})

	for _, tt := range []struct {
		name     string
		call     uplink.Call
		wantCode uplink.Code
		wantMsg  string
	}{
		{"unknown service", uplink.Call{Service: "nope", Method: "m"}, uplink.CodeNoRoute, "no route for service"},
		{"empty method", uplink.Call{Service: "svc"}, uplink.CodeNoRoute, "invalid method"},
		{"parent directory", uplink.Call{Service: "svc", Method: "../admin"}, uplink.CodeNoRoute, "invalid method"},
		{"query in method", uplink.Call{Service: "svc", Method: "m?x=1"}, uplink.CodeNoRoute, "invalid method"},
		{"absolute path", uplink.Call{Service: "svc", Method: "/m"}, uplink.CodeNoRoute, "invalid method"},
		{
			"identity HTTP cannot carry",
			uplink.Call{Service: "svc", Method: "m", Identity: uplink.Identity{DeviceID: "d\r\nX-Tcpgw-User: admin"}},
			uplink.CodeBackendError, "identity header X-Tcpgw-Device has a value HTTP cannot carry",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := r.Do(context.Background(), tt.call)
			if res.Code != tt.wantCode || res.Message != tt.wantMsg {
				t.Errorf("got %q %q, want %q %q", res.Code, res.Message, tt.wantCode, tt.wantMsg)
			}
		})
	}
	if hits.Load() != 0 {
		t.Errorf("backend was called %d times", hits.Load())
	}
}

// blockingBackend's handler reports each request on entered and then holds it until release is
// called or the client gives up. release is idempotent.
func blockingBackend(t testing.TB) (srv *httptest.Server, entered chan struct{}, release func()) {
	entered = make(chan struct{}, 16)
	released := make(chan struct{})
	srv = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-released:
			_, _ = w.Write([]byte("released"))
		case <-r.Context().Done():
		}
	})
	release = sync.OnceFunc(func() { close(released) })
	// Cleanups run last-in first-out: unblock handlers before srv.Close waits for them.
	t.Cleanup(release)
	return srv, entered, release
}

func TestDoTimeout(t *testing.T) {
	const short, long = 50 * time.Millisecond, time.Hour
	for _, tt := range []struct {
		name         string
		routeTimeout time.Duration
		callTimeout  time.Duration
		ctxTimeout   time.Duration
	}{
		{name: "route timeout", routeTimeout: short},
		{name: "call timeout shorter than route", routeTimeout: long, callTimeout: short},
		{name: "call timeout longer than route is capped", routeTimeout: short, callTimeout: long},
		{name: "caller deadline", routeTimeout: long, ctxTimeout: short},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The handler holds every request until the client gives up, so only a deadline
			// can end the call (an ignored one fails the test by hanging for an hour).
			srv, _, _ := blockingBackend(t)
			r := newRouter(t, []config.Route{
				{Service: "svc", URL: srv.URL, Timeout: config.Duration{Duration: tt.routeTimeout}},
			}, uplink.Options{})
			ctx := context.Background()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			res := r.Do(ctx, uplink.Call{Service: "svc", Method: "m", Timeout: tt.callTimeout})
			wantCode(t, res, uplink.CodeTimeout)
			if n := r.InFlight("svc"); n != 0 {
				t.Errorf("InFlight after timeout = %d, want 0", n)
			}
		})
	}

	t.Run("caller cancel", func(t *testing.T) {
		srv, entered, _ := blockingBackend(t)
		r := newRouter(t, []config.Route{
			{Service: "svc", URL: srv.URL, Timeout: config.Duration{Duration: long}},
		}, uplink.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan uplink.Result, 1)
		go func() { done <- r.Do(ctx, uplink.Call{Service: "svc", Method: "m"}) }()
		waitFor(t, entered, "backend request")
		cancel()
		res := waitFor(t, done, "Do to return")
		wantCode(t, res, uplink.CodeBackendError)
		if res.Message != "call canceled" {
			t.Errorf("message = %q, want %q", res.Message, "call canceled")
		}
	})
}

func TestDoBackendDown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(echo))
	url := srv.URL
	srv.Close() // the port now refuses connections
	r := newRouter(t, []config.Route{route("svc", url+"/private/path")}, uplink.Options{})

	res := r.Do(context.Background(), uplink.Call{Service: "svc", Method: "m"})
	wantCode(t, res, uplink.CodeBackendError)
	if !strings.HasPrefix(res.Message, "backend failed: ") || strings.Contains(res.Message, "/private/path") {
		t.Errorf("message %q: want a transport error without the backend URL", res.Message)
	}
}

func TestDoResponseTooLarge(t *testing.T) {
	const budget = 1024
	srv := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		var n, meta int
		var chunked bool
		_, _ = fmt.Sscanf(r.URL.Path, "/%d/%d/%t", &n, &meta, &chunked)
		if meta > 0 {
			w.Header().Set("X-Tcpgw-Meta-Big", strings.Repeat("h", meta))
		}
		if !chunked {
			w.Header().Set("Content-Length", fmt.Sprint(n))
		}
		// Write in two halves with a flush so a chunked body really arrives in pieces.
		_, _ = w.Write(bytes.Repeat([]byte("x"), n/2))
		w.(http.Flusher).Flush()
		_, _ = w.Write(bytes.Repeat([]byte("x"), n-n/2))
	})
	// The router keeps 256 bytes of the frame for the RESPONSE envelope.
	r := newRouter(t, []config.Route{route("svc", srv.URL)}, uplink.Options{MaxResponseBytes: budget + 256})

	// One meta entry costs len("big") + value + 16 bytes of protobuf overhead.
	metaCost := func(v int) int { return len("big") + v + 16 }
	for _, tt := range []struct {
		name    string
		n, meta int
		chunked bool
		ok      bool
	}{
		{"content-length at limit", budget, 0, false, true},
		{"content-length over limit", budget + 1, 0, false, false},
		{"chunked at limit", budget, 0, true, true},
		{"chunked over limit", budget + 1, 0, true, false},
		{"meta headers fill the rest", budget - metaCost(100), 100, false, true},
		{"meta headers push it over", budget - metaCost(100) + 1, 100, false, false},
		{"meta headers alone too large", 0, budget, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			method := fmt.Sprintf("%d/%d/%t", tt.n, tt.meta, tt.chunked)
			res := r.Do(context.Background(), uplink.Call{Service: "svc", Method: method})
			if tt.ok {
				wantCode(t, res, uplink.CodeOK)
				if len(res.Payload) != tt.n {
					t.Errorf("payload %d bytes, want %d", len(res.Payload), tt.n)
				}
				return
			}
			wantCode(t, res, uplink.CodeBackendError)
			if res.Message != "response too large" || res.Payload != nil {
				t.Errorf("message %q, payload %d bytes", res.Message, len(res.Payload))
			}
		})
	}
}

func TestDoInFlightLimit(t *testing.T) {
	srv, entered, release := blockingBackend(t)
	r := newRouter(t, []config.Route{{Service: "svc", URL: srv.URL, MaxInFlight: 2}}, uplink.Options{})
	call := uplink.Call{Service: "svc", Method: "m"}

	held := make(chan uplink.Result, 2)
	for range 2 {
		go func() { held <- r.Do(context.Background(), call) }()
	}
	waitFor(t, entered, "first held call")
	waitFor(t, entered, "second held call")
	if n := r.InFlight("svc"); n != 2 {
		t.Fatalf("InFlight = %d, want 2", n)
	}

	res := r.Do(context.Background(), call)
	wantCode(t, res, uplink.CodeTooManyInFlight)

	release()
	for range 2 {
		res := waitFor(t, held, "held call to finish")
		wantCode(t, res, uplink.CodeOK)
	}
	if n := r.InFlight("svc"); n != 0 {
		t.Fatalf("InFlight after release = %d, want 0", n)
	}
	res = r.Do(context.Background(), call)
	wantCode(t, res, uplink.CodeOK)
	if string(res.Payload) != "released" {
		t.Errorf("payload %q", res.Payload)
	}
}

func TestDoH2C(t *testing.T) {
	protos := make(chan int, 1)
	srv := newH2CBackend(t, func(w http.ResponseWriter, r *http.Request) {
		protos <- r.ProtoMajor
		w.Header().Set("X-Tcpgw-Meta-Via", "h2c")
		echo(w, r)
	})
	r := newRouter(t, []config.Route{{Service: "svc", URL: srv.URL, H2C: true}}, uplink.Options{})

	res := r.Do(context.Background(), uplink.Call{Service: "svc", Method: "m", Payload: []byte("over h2c")})
	wantCode(t, res, uplink.CodeOK)
	if string(res.Payload) != "over h2c" || res.Headers["via"] != "h2c" {
		t.Errorf("payload %q headers %v", res.Payload, res.Headers)
	}
	if major := waitFor(t, protos, "backend request"); major != 2 {
		t.Errorf("backend saw HTTP/%d, want HTTP/2", major)
	}
}

// observation is one Options.Observe call.
type observation struct {
	service string
	code    uplink.Code
	status  int
	elapsed time.Duration
}

type observer struct {
	mu  sync.Mutex
	got []observation
}

func (o *observer) observe(service string, code uplink.Code, status int, elapsed time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, observation{service, code, status, elapsed})
}

func (o *observer) take() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	got := o.got
	o.got = nil
	return got
}

// tickClock advances one second per reading, so elapsed is exactly 1s for each Do.
func tickClock() func() time.Time {
	var ticks atomic.Int64
	return func() time.Time { return time.Unix(ticks.Add(1), 0) }
}

func TestDoObserve(t *testing.T) {
	ok := newBackend(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	slow, _, _ := blockingBackend(t)
	held, entered, release := blockingBackend(t)
	down := httptest.NewServer(http.HandlerFunc(echo))
	down.Close()

	obs := &observer{}
	r := newRouter(t, []config.Route{
		{Service: "ok", URL: ok.URL},
		{Service: "slow", URL: slow.URL, Timeout: config.Duration{Duration: 20 * time.Millisecond}},
		{Service: "down", URL: down.URL},
		{Service: "full", URL: held.URL, MaxInFlight: 1},
	}, uplink.Options{Observe: obs.observe, Clock: tickClock()})

	for _, tt := range []struct {
		name string
		call uplink.Call
		want observation
	}{
		{"ok", uplink.Call{Service: "ok", Method: "m"}, observation{"ok", uplink.CodeOK, http.StatusTeapot, time.Second}},
		{"unknown service is not a label", uplink.Call{Service: "made-up-123", Method: "m"},
			observation{"", uplink.CodeNoRoute, 0, time.Second}},
		{"invalid method", uplink.Call{Service: "ok", Method: ".."}, observation{"ok", uplink.CodeNoRoute, 0, time.Second}},
		{"timeout", uplink.Call{Service: "slow", Method: "m"}, observation{"slow", uplink.CodeTimeout, 0, time.Second}},
		{"backend down", uplink.Call{Service: "down", Method: "m"},
			observation{"down", uplink.CodeBackendError, 0, time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r.Do(context.Background(), tt.call)
			got := obs.take()
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("observations = %+v, want exactly [%+v]", got, tt.want)
			}
		})
	}

	t.Run("too many in flight", func(t *testing.T) {
		first := make(chan uplink.Result, 1)
		go func() { first <- r.Do(context.Background(), uplink.Call{Service: "full", Method: "m"}) }()
		waitFor(t, entered, "held call")
		r.Do(context.Background(), uplink.Call{Service: "full", Method: "m"})
		release()
		waitFor(t, first, "held call to finish")
		got := obs.take()
		// The held call spans the refused call's two clock readings: 3 ticks.
		want := []observation{
			{"full", uplink.CodeTooManyInFlight, 0, time.Second},
			{"full", uplink.CodeOK, http.StatusOK, 3 * time.Second},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("observations = %+v, want %+v", got, want)
		}
	})
}

func TestDoConcurrent(t *testing.T) {
	srv1 := newBackend(t, echo)
	srv2 := newH2CBackend(t, echo)
	var observed atomic.Int64
	r := newRouter(t, []config.Route{
		route("h1", srv1.URL),
		{Service: "h2c", URL: srv2.URL, H2C: true},
	}, uplink.Options{Observe: func(string, uplink.Code, int, time.Duration) { observed.Add(1) }})

	const workers, calls = 32, 25
	var wg sync.WaitGroup
	errs := make(chan string, workers*calls)
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				service := []string{"h1", "h2c"}[(w+i)%2]
				payload := fmt.Sprintf("worker %d call %d", w, i)
				res := r.Do(context.Background(), uplink.Call{
					Service: service, Method: "echo", Payload: []byte(payload),
					Identity: uplink.Identity{UserID: fmt.Sprint(w), Seq: uint64(i)},
				})
				if res.Code != uplink.CodeOK || string(res.Payload) != payload {
					errs <- fmt.Sprintf("%s: got %q %q %q, want ok %q", service, res.Code, res.Message, res.Payload, payload)
				}
				_ = r.InFlight(service)
				_ = r.Routes()
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := observed.Load(); n != workers*calls {
		t.Errorf("Observe called %d times, want %d", n, workers*calls)
	}
	if r.InFlight("h1")+r.InFlight("h2c") != 0 {
		t.Error("in-flight slots leaked")
	}
}

// countingTransport wraps a real transport to show Options.Transport carries the calls.
type countingTransport struct {
	http.RoundTripper
	n atomic.Int32
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.RoundTripper.RoundTrip(req)
}

func TestOptionsTransportCarriesEveryRoute(t *testing.T) {
	srv := newH2CBackend(t, echo)
	tr := &countingTransport{RoundTripper: &http.Transport{}}
	t.Cleanup(tr.RoundTripper.(*http.Transport).CloseIdleConnections)
	r := newRouter(t, []config.Route{route("a", srv.URL), {Service: "b", URL: srv.URL, H2C: true}},
		uplink.Options{Transport: tr})
	for _, s := range []string{"a", "b"} {
		wantCode(t, r.Do(context.Background(), uplink.Call{Service: s, Method: "m"}), uplink.CodeOK)
	}
	if tr.n.Load() != 2 {
		t.Errorf("transport carried %d calls, want 2", tr.n.Load())
	}
}

func TestCodesAreStable(t *testing.T) {
	want := "ok no_route timeout backend_error rate_limited too_many_in_flight draining"
	if got := fmt.Sprint(uplink.Codes()); got != "["+want+"]" {
		t.Errorf("Codes() = %s, want [%s]", got, want)
	}
}

func BenchmarkRouterDo(b *testing.B) {
	payload := bytes.Repeat([]byte("p"), 128)
	for _, bc := range []struct {
		name string
		h2c  bool
	}{{"http1", false}, {"h2c", true}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := newH2CBackend(b, echo)
			r := newRouter(b, []config.Route{{Service: "svc", URL: srv.URL, H2C: bc.h2c}}, uplink.Options{})
			call := uplink.Call{
				Service: "svc", Method: "bench", Payload: payload,
				Headers:  map[string]string{"trace-id": "abc"},
				Identity: uplink.Identity{UserID: "u", SessionID: "s", DeviceID: "d", ClientAddress: "127.0.0.1:1"},
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if res := r.Do(context.Background(), call); res.Code != uplink.CodeOK {
						b.Errorf("code %q: %s", res.Code, res.Message)
						return
					}
				}
			})
		})
	}
}
