package websocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/gateway/uplink"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
	"github.com/tcpgateway/tcpgateway/test/lb"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

const (
	issuer   = "https://auth.test"
	audience = "tcpgw-ws-test"
	bound    = 30 * time.Second // every wait on an event
)

// fixture is two gateway processes serving WebSocket behind the LB, on one Kafka topic.
type fixture struct {
	t       *testing.T
	secret  []byte
	brokers string
	topic   string
	gws     []*gwproc.Gateway
	lb      *lb.LB
	pub     *push.Publisher
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, secret: []byte("websocket-test-hs256-secret-0123456789")}
	bins := gwproc.Build(t, false)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hs256")
	if err := os.WriteFile(keyFile, f.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		_, _ = fmt.Fprintf(w, "%s: %s", r.Header.Get(uplink.HeaderUser), body)
	}))
	t.Cleanup(echo.Close)
	f.brokers = kafkatest.Bootstrap(t)
	f.topic = kafkatest.CreateTopic(t, f.brokers, 3)
	receipts := kafkatest.CreateTopic(t, f.brokers, 3)
	var err error
	f.lb, err = lb.New("127.0.0.1:0", lb.Options{DeregistrationDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.lb.Close() })
	for i := range 2 {
		id := fmt.Sprintf("ws-%d", i)
		g, err := gwproc.StartGateway(t, gwproc.GatewayOptions{Bin: bins.Gateway, Dir: dir, ID: id, WebSocket: true,
			Config: func(clients, admin string) config.Config {
				return config.Config{
					ServerID: id,
					Listen:   config.Listen{Clients: clients, Admin: admin},
					Auth:     config.Auth{JWT: &config.JWTAuth{HS256SecretFile: keyFile, Issuer: issuer, Audience: audience}},
					Routes:   []config.Route{{Service: "echo", URL: echo.URL}},
					Kafka:    config.Kafka{Brokers: []string{f.brokers}, DownlinkTopic: f.topic, ReceiptsTopic: receipts},
					Drain: config.Drain{
						DeregistrationDelay: config.Duration{Duration: 200 * time.Millisecond},
						SpreadWindow:        config.Duration{Duration: 500 * time.Millisecond},
						FlushTimeout:        config.Duration{Duration: 3 * time.Second},
						HardDeadline:        config.Duration{Duration: 10 * time.Second},
					},
					Logging: config.Logging{Level: "info", Format: "json"},
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		f.gws = append(f.gws, g)
		f.lb.Add(g.WebSocketAddr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	f.pub, err = push.New(ctx, push.Options{Brokers: []string{f.brokers}, Topic: f.topic, ReceiptsTopic: receipts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.pub.Close() })
	return f
}

func (f *fixture) token(user string) string {
	claims := jwt.MapClaims{"sub": user, "iss": issuer, "aud": audience, "exp": time.Now().Add(time.Hour).Unix()}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(f.secret)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// holder is the gateway holding n sessions, waited for.
func (f *fixture) holder() *gwproc.Gateway {
	f.t.Helper()
	var held *gwproc.Gateway
	wait.For(f.t, bound, "a gateway holding the session", func() bool {
		for _, g := range f.gws {
			if st, err := g.Status(); err == nil && st.Sessions == 1 {
				held = g
				return true
			}
		}
		return false
	})
	return held
}

// inbox collects the client's pushes, acking each.
type inbox struct {
	mu   sync.Mutex
	got  []string
	more chan struct{}
}

func (in *inbox) add(p string) {
	in.mu.Lock()
	in.got = append(in.got, p)
	in.mu.Unlock()
	select {
	case in.more <- struct{}{}:
	default:
	}
}

func (in *inbox) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(bound)
	for {
		in.mu.Lock()
		got := append([]string(nil), in.got...)
		in.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-in.more:
		case <-deadline:
			t.Fatalf("%d pushes arrived within %v, want %d: %q", len(got), bound, n, got)
		}
	}
}

// The Go SDK over WebSocket (its own transport: Options.Addr is the ws:// URL), through the
// LB: handshake, a request, pushes acked; then the
// gateway holding the session drains (the LB deregisters it, preStop): the client reads
// GOAWAY, the gateway closes the WebSocket with 1001, and the client resumes on the other
// gateway; pushes published before, during and after the drain all arrive, once, in order.
func TestWebSocketSessionSurvivesDrain(t *testing.T) {
	f := newFixture(t)
	in := &inbox{more: make(chan struct{}, 1)}
	var c *client.Client
	var mu sync.Mutex
	var disconnects []error
	var acks sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
	defer cancel()
	url := "ws://" + f.lb.Addr() + config.DefaultWebSocketPath
	c, err := client.Connect(ctx, client.Options{
		Addr: url, Token: f.token("wendy"), // the SDK's own WebSocket transport
		Reconnect: client.Backoff{Initial: 50 * time.Millisecond, Max: time.Second},
		OnPush: func(p *client.Push) {
			in.add(string(p.Payload))
			if p.AckRequired {
				acks.Add(1)
				go func() {
					defer acks.Done()
					_ = c.Ack(ctx, p)
				}()
			}
		},
		OnDisconnect: func(err error) {
			mu.Lock()
			disconnects = append(disconnects, err)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Request(ctx, "echo", "say", []byte("hello"))
	if err != nil || string(resp.Payload) != "wendy: hello" {
		t.Fatalf("request over WebSocket: %v, %+v", err, resp)
	}

	victim := f.holder()
	other := f.gws[0]
	if other == victim {
		other = f.gws[1]
	}
	// An acked push: its receipt comes back through Kafka.
	r, err := f.pub.PushAndWaitAck(ctx, push.Message{Target: push.User("wendy"), Payload: []byte("p0")})
	if err != nil || r.GetKind() != pb.Receipt_KIND_ACKED {
		t.Fatalf("push with ack over WebSocket: %v, %v", err, r)
	}
	send := func(i int) {
		if _, err := f.pub.Push(ctx, push.Message{Target: push.User("wendy"), Payload: fmt.Appendf(nil, "p%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 5; i++ {
		send(i)
	}
	in.waitFor(t, 6)

	// The drain, as Kubernetes runs it: the LB deregisters the pod while preStop drains it.
	f.lb.Remove(victim.WebSocketAddr)
	drained := make(chan gwproc.DrainResult, 1)
	go func() { drained <- victim.PreStop() }()
	for i := 6; i <= 15; i++ { // during the drain
		send(i)
		time.Sleep(50 * time.Millisecond) // pacing of the producer, not a wait for an event
	}
	if res := <-drained; !res.OK() {
		t.Fatalf("preStop: %+v", res)
	}
	wait.For(t, bound, "the session resumed on "+other.ID, func() bool {
		st, err := other.Status()
		return err == nil && st.Sessions == 1
	})
	for i := 16; i <= 20; i++ { // after
		send(i)
	}
	got := in.waitFor(t, 21)
	for i, p := range got {
		if want := fmt.Sprintf("p%d", i); p != want || len(got) != 21 {
			t.Fatalf("pushes %q: want p0..p20, each once, in order", got)
		}
	}
	acks.Wait()

	mu.Lock()
	defer mu.Unlock()
	var away *client.GoAwayError
	if len(disconnects) == 0 || !errors.As(disconnects[0], &away) {
		t.Fatalf("disconnects %v: want the first to be the drain's GOAWAY", disconnects)
	}
	// The resumed connection is a WebSocket one too.
	if v, err := other.Metric("tcpgw_websocket_upgrades_total", "result", "ok"); err != nil || v != 1 {
		t.Errorf("%s counted %v WebSocket upgrades (%v), want 1", other.ID, v, err)
	}
}

// tcpgwctl reaches the gateway's WebSocket listener through the LB with -addr a ws:// URL (the
// Go SDK's WebSocket transport): a request answered by the backend, and the upgrade counted.
func TestTcpgwctlOverWebSocket(t *testing.T) {
	f := newFixture(t)
	bins := gwproc.Build(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.Tcpgwctl, "request", "-addr", "ws://"+f.lb.Addr()+config.DefaultWebSocketPath,
		"-token", f.token("tim"), "echo", "say", "hi")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "200 tim: hi") {
		t.Fatalf("tcpgwctl request over ws://: %v\n%s", err, out)
	}
	var upgrades float64
	for _, g := range f.gws {
		v, err := g.Metric("tcpgw_websocket_upgrades_total", "result", "ok")
		if err != nil {
			t.Fatal(err)
		}
		upgrades += v
	}
	if upgrades != 1 {
		t.Fatalf("%v WebSocket upgrades counted, want 1", upgrades)
	}
}
