package server_test

import (
	"bufio"
	"context"
	poll "github.com/tcpgateway/tcpgateway/test/wait"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tcpgateway/tcpgateway/gateway/auth"
	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/server"
	"github.com/tcpgateway/tcpgateway/gateway/uplink"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// wait bounds every wait on an event in these tests.
const wait = 10 * time.Second

// The issuer and audience the harness's gateway requires and its tokens carry.
const (
	testIssuer   = "https://auth.test"
	testAudience = "tcpgw-test"
)

// harness is a real gateway server on a loopback port, with a real HTTP backend and HS256
// tokens signed by a secret written to a file, as a mounted Secret would be.
type harness struct {
	t       testing.TB
	srv     *server.Server
	addr    string
	m       *metrics.Gateway
	secret  []byte
	backend *httptest.Server
}

func start(t testing.TB, backend http.Handler, mutate func(*config.Config)) *harness {
	t.Helper()
	h := &harness{t: t, secret: []byte("test-secret-0123456789abcdef0123")}
	if backend == nil {
		backend = echoBackend()
	}
	h.backend = httptest.NewServer(backend)
	t.Cleanup(h.backend.Close)

	keyFile := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(keyFile, h.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		ServerID: "gw-test",
		Listen:   config.Listen{Clients: "127.0.0.1:0", Admin: "127.0.0.1:0"},
		Auth:     config.Auth{JWT: &config.JWTAuth{HS256SecretFile: keyFile, Issuer: testIssuer, Audience: testAudience}},
		Routes:   []config.Route{{Service: "echo", URL: h.backend.URL}},
	}
	if mutate != nil {
		mutate(cfg)
	}
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.New(cfg.Auth, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.m = metrics.New(prometheus.NewRegistry())
	router, err := uplink.NewRouter(cfg.Routes, uplink.Options{MaxResponseBytes: cfg.Limits.MaxFrameBytes, Observe: server.ObserveUplink(h.m)})
	if err != nil {
		t.Fatal(err)
	}
	h.srv, err = server.New(server.Options{Config: cfg, Verifier: verifier, Router: router, Metrics: h.m, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen.Clients)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Serve(ln); err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = h.srv.Shutdown(ctx)
		router.Close()
	})
	return h
}

// echoBackend answers every call with its payload and the identity it was given.
func echoBackend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(uplink.HeaderMetaPrefix+"User", r.Header.Get(uplink.HeaderUser))
		w.Header().Set(uplink.HeaderMetaPrefix+"Path", r.URL.Path)
		w.WriteHeader(http.StatusOK)
		buf := make([]byte, 1<<16)
		n, _ := r.Body.Read(buf)
		_, _ = w.Write(buf[:n])
	})
}

func (h *harness) token(user string, groups ...string) string {
	h.t.Helper()
	claims := jwt.MapClaims{"sub": user, "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()}
	if len(groups) > 0 {
		claims["groups"] = groups
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(h.secret)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) connect(user, sessionID string, mutate ...func(*client.Options)) *client.Client {
	h.t.Helper()
	opts := client.Options{Addr: h.addr, Token: h.token(user), SessionID: sessionID, NoReconnect: true}
	for _, m := range mutate {
		m(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := client.Connect(ctx, opts)
	if err != nil {
		h.t.Fatalf("connect: %v", err)
	}
	h.t.Cleanup(func() { _ = c.Close() })
	return c
}

// raw is a bare TCP connection for frames the SDK would never send.
type raw struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func (h *harness) raw() *raw {
	h.t.Helper()
	nc, err := net.DialTimeout("tcp", h.addr, wait)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { nc.Close() })
	return &raw{t: h.t, nc: nc, r: bufio.NewReader(nc)}
}

func (r *raw) writeBytes(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *raw) send(f *pb.Frame) {
	r.t.Helper()
	b, err := protocol.Append(nil, f, 1<<20)
	if err != nil {
		r.t.Fatal(err)
	}
	r.writeBytes(b)
}

func (r *raw) read() *pb.Frame {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(wait))
	f, _, err := protocol.Read(r.r, 1<<20, nil)
	if err != nil {
		r.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

// expectError reads frames until an ERROR, which must have the given code, then expects EOF.
func (r *raw) expectError(code pb.ErrorCode) {
	r.t.Helper()
	for i := 0; i < 100; i++ {
		f := r.read()
		if e := f.GetError(); e != nil {
			if e.Code != code {
				r.t.Fatalf("ERROR %s (%s), want %s", e.Code, e.Message, code)
			}
			r.expectClosed()
			return
		}
	}
	r.t.Fatalf("no ERROR %s within 100 frames", code)
}

func (r *raw) expectClosed() {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(wait))
	if _, err := r.r.ReadByte(); err == nil {
		r.t.Fatal("connection still open after ERROR")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		r.t.Fatal("connection not closed within the wait")
	}
}

func (r *raw) handshake(token string) *pb.HandshakeAck {
	r.t.Helper()
	return r.handshakeWith(&pb.Handshake{ProtocolVersion: protocol.Version, Token: token})
}

func (r *raw) handshakeSession(token, sessionID string) *pb.HandshakeAck {
	r.t.Helper()
	return r.handshakeWith(&pb.Handshake{ProtocolVersion: protocol.Version, Token: token, SessionId: sessionID})
}

func (r *raw) handshakeVersion(token string, version uint32) *pb.HandshakeAck {
	r.t.Helper()
	return r.handshakeWith(&pb.Handshake{ProtocolVersion: version, Token: token})
}

func (r *raw) handshakeWith(hs *pb.Handshake) *pb.HandshakeAck {
	r.t.Helper()
	r.send(&pb.Frame{Body: &pb.Frame_Handshake{Handshake: hs}})
	f := r.read()
	if f.GetHandshakeAck() == nil {
		r.t.Fatalf("handshake answered with %v", f)
	}
	return f.GetHandshakeAck()
}

func counter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// eventually polls a condition that has no event to wait on (metrics, registries).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.For(t, wait, what, cond)
}

func readRaw(r *raw) (*pb.Frame, []byte, error) { return protocol.Read(r.r, 1<<20, nil) }
