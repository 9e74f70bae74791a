package downlink_test

import (
	"context"
	"fmt"
	poll "github.com/tcpgateway/tcpgateway/test/wait"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	dto "github.com/prometheus/client_model/go"

	"github.com/tcpgateway/tcpgateway/gateway/app"
	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

// wait bounds every wait in these tests.
const wait = 30 * time.Second

// cluster is several real gateways (in-process, each with its own server id and ports)
// consuming one real Kafka topic, like the pods of one TCPGateway.
type cluster struct {
	t         *testing.T
	bootstrap string
	topic     string
	receipts  string
	secret    []byte
	gws       []*app.App
	mutate    func(*config.Config) // applied to every gateway's config before defaults
}

func newCluster(t *testing.T, gateways, partitions int) *cluster {
	t.Helper()
	return newClusterWith(t, gateways, partitions, nil)
}

func newClusterWith(t *testing.T, gateways, partitions int, mutate func(*config.Config)) *cluster {
	t.Helper()
	bootstrap := kafkatest.Bootstrap(t)
	c := &cluster{
		t: t, bootstrap: bootstrap, mutate: mutate,
		topic:    kafkatest.CreateTopic(t, bootstrap, partitions),
		receipts: kafkatest.CreateTopic(t, bootstrap, partitions),
		secret:   []byte("downlink-test-secret-0123456789abcdef"),
	}
	keyFile := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(keyFile, c.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range gateways {
		c.gws = append(c.gws, c.startGateway(fmt.Sprintf("gw-%d", i), keyFile, []string{bootstrap}))
	}
	return c
}

// The issuer and audience the test gateways require and the test tokens carry.
const (
	testIssuer   = "https://auth.test"
	testAudience = "tcpgw-test"
)

func (c *cluster) startGateway(id, keyFile string, brokers []string) *app.App {
	c.t.Helper()
	cfg := &config.Config{
		ServerID: id,
		Listen:   config.Listen{Clients: "127.0.0.1:0", Admin: "127.0.0.1:0"},
		Auth:     config.Auth{JWT: &config.JWTAuth{HS256SecretFile: keyFile, Issuer: testIssuer, Audience: testAudience}},
		Kafka:    config.Kafka{Brokers: brokers, DownlinkTopic: c.topic, ReceiptsTopic: c.receipts},
	}
	cfg.Drain = config.Drain{
		DeregistrationDelay: config.Duration{Duration: 100 * time.Millisecond},
		SpreadWindow:        config.Duration{Duration: 500 * time.Millisecond},
		FlushTimeout:        config.Duration{Duration: 2 * time.Second},
		HardDeadline:        config.Duration{Duration: 10 * time.Second},
	}
	if c.mutate != nil {
		c.mutate(cfg)
	}
	cfg.Default()
	cfg.Limits.RequestsPerSecond = 1e6
	if err := cfg.Validate(); err != nil {
		c.t.Fatal(err)
	}
	a, err := app.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	return a
}

// waitReady waits for every gateway's readiness (all partitions positioned).
func (c *cluster) waitReady() {
	c.t.Helper()
	for _, g := range c.gws {
		eventually(c.t, "gateway readiness", func() bool { return g.Ready() == "" })
	}
}

// inbox collects a client's pushes.
type inbox struct {
	mu     sync.Mutex
	pushes []*client.Push
	signal chan struct{}
}

func (b *inbox) add(p *client.Push) {
	b.mu.Lock()
	b.pushes = append(b.pushes, p)
	b.mu.Unlock()
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

func (b *inbox) snapshot() []*client.Push {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*client.Push(nil), b.pushes...)
}

// waitFor waits until n pushes arrived.
func (b *inbox) waitFor(t *testing.T, n int) []*client.Push {
	t.Helper()
	deadline := time.After(wait)
	for {
		if got := b.snapshot(); len(got) >= n {
			return got
		}
		select {
		case <-b.signal:
		case <-deadline:
			t.Fatalf("received %d pushes, want %d", len(b.snapshot()), n)
		}
	}
}

// connect opens a session for user on gateway gw; onPush (optional) runs for every push
// after it is recorded.
func (c *cluster) connect(gw int, user string, groups []string, onPush func(*client.Client, *client.Push)) (*client.Client, *inbox) {
	c.t.Helper()
	claims := jwt.MapClaims{"sub": user, "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()}
	if len(groups) > 0 {
		claims["groups"] = groups
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.secret)
	if err != nil {
		c.t.Fatal(err)
	}
	box := &inbox{signal: make(chan struct{}, 1)}
	var cl *client.Client
	ready := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cl, err = client.Connect(ctx, client.Options{
		Addr: c.gws[gw].ClientAddr(), Token: token, NoReconnect: true,
		OnPush: func(p *client.Push) {
			box.add(p)
			<-ready
			if onPush != nil {
				onPush(cl, p)
			}
		},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	close(ready)
	c.t.Cleanup(func() { _ = cl.Close() })
	// The session is registered right after the ack is queued; wait for it on the gateway.
	eventually(c.t, "session registration", func() bool {
		_, ok := c.gws[gw].Server().Sessions().Get(session.Key{UserID: user, SessionID: cl.SessionID()})
		return ok
	})
	return cl, box
}

func (c *cluster) publisher() *push.Publisher {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	p, err := push.New(ctx, push.Options{Brokers: []string{c.bootstrap}, Topic: c.topic, ReceiptsTopic: c.receipts})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = p.Close() })
	return p
}

// metric reads a counter or gauge of one gateway by name and label values ("" name: sum all).
func metric(t *testing.T, a *app.App, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if matches(m, labels) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// eventually polls a condition that has no event to wait on (metrics, registries).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.For(t, wait, what, cond)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func writeFile(path string, data []byte) error { return os.WriteFile(path, data, 0o600) }
