package hostile

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/uplink"
	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

// Token claims the gateway under test requires (its configuration names them).
const (
	Issuer   = "tcpgw-hostile"
	Audience = "tcpgw-hostile-clients"
)

// EnvRaceGateways set to 1 builds the gateway processes with the race detector (slower; a race
// they report fails the test).
const EnvRaceGateways = "TCPGW_HOSTILE_RACE_GATEWAYS"

// Options say which gateway a test needs.
type Options struct {
	// Kafka gives the gateway a downlink: Topic and Receipts are created (Partitions each)
	// on the test broker unless NoTopics is set (their names are still chosen, unique).
	Kafka      bool
	Partitions int // default 3
	NoTopics   bool
	// Configure edits the configuration before it is written (limits, drain, auth...).
	Configure func(*config.Config)
	// NoWaitReady returns once the process serves /healthz, for a gateway that cannot become
	// ready; Gateway.WaitReady waits for readiness later.
	NoWaitReady bool
}

// Gateway is a gateway process under attack.
type Gateway struct {
	*gwproc.Gateway
	t       testing.TB
	Secret  []byte // the HS256 key
	EchoURL string // the in-process echo backend behind route "echo"
	Brokers string // with Options.Kafka
	// Topic and Receipts are the downlink and receipts topics (with Options.Kafka).
	Topic, Receipts string
}

// Start starts a gateway process for the test; it is killed when the test ends.
func Start(t testing.TB, o Options) *Gateway {
	t.Helper()
	if o.Partitions == 0 {
		o.Partitions = 3
	}
	bins := gwproc.Build(t, os.Getenv(EnvRaceGateways) == "1")
	dir := t.TempDir()
	g := &Gateway{t: t, Secret: []byte("hostile-suite-hs256-secret-0123456789abcdef")}
	keyFile := filepath.Join(dir, "hs256.secret")
	if err := os.WriteFile(keyFile, g.Secret, 0o600); err != nil {
		t.Fatal(err)
	}
	echo := httptest.NewServer(http.HandlerFunc(echoHandler))
	t.Cleanup(echo.Close)
	g.EchoURL = echo.URL
	if o.Kafka {
		g.Brokers = kafkatest.Bootstrap(t)
		if o.NoTopics {
			g.Topic, g.Receipts = kafkatest.TopicName(t), kafkatest.TopicName(t)+"-receipts"
		} else {
			g.Topic = kafkatest.CreateTopic(t, g.Brokers, o.Partitions)
			g.Receipts = kafkatest.CreateTopic(t, g.Brokers, o.Partitions)
		}
	}
	id := "hostile"
	gw, err := gwproc.StartGateway(t, gwproc.GatewayOptions{
		Bin: bins.Gateway, Dir: dir, ID: id, NoWaitReady: o.NoWaitReady,
		Config: func(clients, admin string) config.Config {
			cfg := g.config(id, keyFile, clients, admin)
			if o.Configure != nil {
				o.Configure(&cfg)
			}
			return cfg
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	g.Gateway = gw
	return g
}

// config is the base configuration: generous request limits, route "echo", HS256 with
// issuer and audience, Kafka when asked, debug logs (the tests read them).
func (g *Gateway) config(id, keyFile, clients, admin string) config.Config {
	cfg := config.Config{
		ServerID: id,
		Listen:   config.Listen{Clients: clients, Admin: admin},
		Limits:   config.Limits{RequestsPerSecond: 1000, RequestBurst: 1000},
		Auth: config.Auth{JWT: &config.JWTAuth{
			HS256SecretFile: keyFile, Issuer: Issuer, Audience: Audience,
		}},
		Routes:  []config.Route{{Service: "echo", URL: g.EchoURL, Timeout: config.Duration{Duration: 5 * time.Second}}},
		Logging: config.Logging{Level: "debug", Format: "json"},
	}
	if g.Brokers != "" {
		cfg.Kafka = config.Kafka{Brokers: []string{g.Brokers}, DownlinkTopic: g.Topic, ReceiptsTopic: g.Receipts}
	}
	return cfg
}

// echoHandler answers every call with "<user> <session> <method>: <payload>", from the
// identity headers the gateway forwarded.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = fmt.Fprintf(w, "%s %s %s: %s", r.Header.Get(uplink.HeaderUser), r.Header.Get(uplink.HeaderSession), r.URL.Path, body)
}

// Token mints a valid token (one hour) for user with the group tags.
func (g *Gateway) Token(user string, groups ...string) string {
	claims := jwt.MapClaims{"sub": user, "iss": Issuer, "aud": Audience, "exp": time.Now().Add(time.Hour).Unix()}
	if len(groups) > 0 {
		claims["groups"] = groups
	}
	return g.SignToken(claims)
}

// SignToken signs arbitrary claims with the gateway's HS256 key (expired tokens, other
// issuers...).
func (g *Gateway) SignToken(claims jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(g.Secret)
	if err != nil {
		g.t.Fatal(err)
	}
	return s
}

// Dial opens a raw connection to the gateway's client port.
func (g *Gateway) Dial() *Conn {
	g.t.Helper()
	return Dial(g.t, g.ClientAddr)
}

// Metric is the current value of a series on /metrics (see gwproc.Metrics.Value); a scrape
// error fails the test.
func (g *Gateway) Metric(name string, labels ...string) float64 {
	g.t.Helper()
	v, err := g.Gateway.Metric(name, labels...)
	if err != nil {
		g.t.Fatal(err)
	}
	return v
}
