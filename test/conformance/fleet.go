package conformance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/gateway/uplink"
	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
	"github.com/tcpgateway/tcpgateway/test/lb"
	"github.com/tcpgateway/tcpgateway/test/tlstest"
)

// Token claims the fleets require (their configuration names them).
const (
	Issuer   = "tcpgw-conformance"
	Audience = "tcpgw-conformance-clients"
)

// EnvRaceGateways set to 1 builds the gateway processes with the race detector.
const EnvRaceGateways = "TCPGW_CONFORMANCE_RACE_GATEWAYS"

// FleetOptions say which gateways a scenario needs.
type FleetOptions struct {
	Gateways int // default 1
	// Partitions of the downlink and receipts topics; 0: no Kafka (no downlink).
	Partitions int
	// TLS makes the clients listener speak TLS with a certificate from Fleet.CA.
	TLS bool
	// Configure edits each gateway's configuration before it is written.
	Configure func(*config.Config)
}

// Fleet is a set of gateway processes behind a load balancer (test/lb), with the uplink
// backend, the Kafka topics and a publisher (gateway/push) they share.
type Fleet struct {
	t        testing.TB
	Gateways []*gwproc.Gateway
	LB       *lb.LB
	Backend  *Backend
	Brokers  string
	Topic    string
	Receipts string
	CA       *tlstest.CA // with FleetOptions.TLS
	tls      bool
	secret   []byte

	pubOnce sync.Once
	pub     *push.Publisher
}

// StartFleet starts the gateways (in parallel) and the LB with all of them registered.
func StartFleet(t testing.TB, o FleetOptions) *Fleet {
	t.Helper()
	if o.Gateways == 0 {
		o.Gateways = 1
	}
	bins := gwproc.Build(t, os.Getenv(EnvRaceGateways) == "1")
	dir := t.TempDir()
	f := &Fleet{t: t, tls: o.TLS, secret: []byte("conformance-suite-hs256-secret-0123456789")}
	keyFile := filepath.Join(dir, "hs256.secret")
	if err := os.WriteFile(keyFile, f.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	f.Backend = startBackend(t)
	if o.Partitions > 0 {
		f.Brokers = kafkatest.Bootstrap(t)
		f.Topic = kafkatest.CreateTopic(t, f.Brokers, o.Partitions)
		f.Receipts = kafkatest.CreateTopic(t, f.Brokers, o.Partitions)
	}
	var tlsCfg *config.ListenTLS
	if o.TLS {
		ca, err := tlstest.NewCA("tcpgateway conformance CA")
		if err != nil {
			t.Fatal(err)
		}
		pair, err := ca.Issue(1)
		if err != nil {
			t.Fatal(err)
		}
		sd, err := tlstest.NewSecretDir(dir, pair)
		if err != nil {
			t.Fatal(err)
		}
		f.CA = ca
		tlsCfg = &config.ListenTLS{CertFile: sd.CertFile(), KeyFile: sd.KeyFile(), MinVersion: config.TLS12}
	}
	f.Gateways = make([]*gwproc.Gateway, o.Gateways)
	errs := make([]error, o.Gateways)
	var wg sync.WaitGroup
	for i := range o.Gateways {
		wg.Go(func() {
			id := fmt.Sprintf("conf-%d", i)
			f.Gateways[i], errs[i] = gwproc.StartGateway(t, gwproc.GatewayOptions{
				Bin: bins.Gateway, Dir: dir, ID: id, WebSocket: overWebSocket(),
				Config: func(clients, admin string) config.Config {
					cfg := f.config(id, keyFile, clients, admin)
					cfg.Listen.TLS = tlsCfg
					if overWebSocket() && tlsCfg != nil {
						cfg.Listen.WebSocket = &config.ListenWebSocket{TLS: tlsCfg}
					}
					if o.Configure != nil {
						o.Configure(&cfg)
					}
					return cfg
				},
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if f.LB, err = lb.New("127.0.0.1:0", lb.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.LB.Close() })
	for _, g := range f.Gateways {
		f.LB.Add(f.Listener(g))
	}
	return f
}

// config is a gateway's base configuration: HS256 with issuer and audience, routes "echo"
// (the backend) and "down" (nothing listens), heartbeats every 2 s with an idle timeout of 5 s
// (so every scenario exercises the SDK's heartbeat; the Go SDK drops a connection whose PONG is
// an interval late, and shorter intervals risk that on a loaded machine), short drain knobs.
func (f *Fleet) config(id, keyFile, clients, admin string) config.Config {
	d := func(v time.Duration) config.Duration { return config.Duration{Duration: v} }
	cfg := config.Config{
		ServerID: id,
		Listen:   config.Listen{Clients: clients, Admin: admin},
		Limits: config.Limits{RequestsPerSecond: 1000, RequestBurst: 1000,
			HeartbeatInterval: d(2 * time.Second), IdleTimeout: d(5 * time.Second)},
		Auth: config.Auth{JWT: &config.JWTAuth{HS256SecretFile: keyFile, Issuer: Issuer, Audience: Audience}},
		Routes: []config.Route{
			{Service: "echo", URL: f.Backend.URL, Timeout: d(5 * time.Second)},
			{Service: "down", URL: "http://127.0.0.1:1", Timeout: d(2 * time.Second)},
		},
		Drain: config.Drain{DeregistrationDelay: d(200 * time.Millisecond), SpreadWindow: d(500 * time.Millisecond),
			FlushTimeout: d(2 * time.Second), HardDeadline: d(8 * time.Second)},
		Logging: config.Logging{Level: "info", Format: "json"},
	}
	if f.Topic != "" {
		cfg.Kafka = config.Kafka{Brokers: []string{f.Brokers}, DownlinkTopic: f.Topic, ReceiptsTopic: f.Receipts}
	}
	return cfg
}

// Addr is where clients connect: the LB (a ws:// or wss:// URL over WebSocket).
func (f *Fleet) Addr() string { return clientAddress(f.LB.Addr(), f.tls) }

// Listener is g's listener of the suite's transport (host:port): the clients listener, or
// listen.websocket over WebSocket. The LB carries it; a Link in front of g targets it.
func (f *Fleet) Listener(g *gwproc.Gateway) string {
	if overWebSocket() {
		return g.WebSocketAddr
	}
	return g.ClientAddr
}

// Dial is the address a client dials to reach g itself, not through the LB.
func (f *Fleet) Dial(g *gwproc.Gateway) string { return clientAddress(f.Listener(g), f.tls) }

// Gateway is the gateway whose server id is id.
func (f *Fleet) Gateway(id string) *gwproc.Gateway {
	f.t.Helper()
	for _, g := range f.Gateways {
		if g.ID == id {
			return g
		}
	}
	f.t.Fatalf("no gateway %q", id)
	return nil
}

// Token mints a valid token (one hour) for user.
func (f *Fleet) Token(user string) string {
	return f.SignToken(jwt.MapClaims{"sub": user, "iss": Issuer, "aud": Audience, "exp": time.Now().Add(time.Hour).Unix()})
}

// SignToken signs claims with the fleet's HS256 key.
func (f *Fleet) SignToken(claims jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(f.secret)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// Publisher is the fleet's push publisher (with the receipts topic), made on first use.
func (f *Fleet) Publisher() *push.Publisher {
	f.t.Helper()
	f.pubOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p, err := push.New(ctx, push.Options{Brokers: []string{f.Brokers}, Topic: f.Topic, ReceiptsTopic: f.Receipts})
		if err != nil {
			f.t.Fatal(err)
		}
		f.pub = p
		f.t.Cleanup(func() { _ = p.Close() })
	})
	if f.pub == nil {
		f.t.Fatal("no publisher")
	}
	return f.pub
}

// Push publishes one message and fails the test unless Kafka accepted it.
func (f *Fleet) Push(m push.Message) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := f.Publisher().Push(ctx, m); err != nil {
		f.t.Fatalf("push %s: %v", m.ID, err)
	}
}

// Backend is the uplink backend behind route "echo": it answers "<user> <session> <path>:
// <payload>" from the identity headers; a method "sleep/<ms>[/...]" answers after that long.
// It remembers the methods it was called with.
type Backend struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func startBackend(t testing.TB) *Backend {
	b := &Backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.Close)
	return b
}

func (b *Backend) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	method := strings.TrimPrefix(r.URL.Path, "/")
	b.mu.Lock()
	b.seen = append(b.seen, method)
	b.mu.Unlock()
	if rest, ok := strings.CutPrefix(method, "sleep/"); ok {
		ms, _, _ := strings.Cut(rest, "/")
		if n, err := strconv.Atoi(ms); err == nil && n > 0 {
			select {
			case <-time.After(time.Duration(min(n, 10000)) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	}
	_, _ = fmt.Fprintf(w, "%s %s %s: %s", r.Header.Get(uplink.HeaderUser), r.Header.Get(uplink.HeaderSession), r.URL.Path, body)
}

// Saw reports whether the backend was called with method.
func (b *Backend) Saw(method string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Contains(b.seen, method)
}

// Count is how many times the backend was called with method.
func (b *Backend) Count(method string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.seen {
		if m == method {
			n++
		}
	}
	return n
}
