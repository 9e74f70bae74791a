package drain

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
	"github.com/tcpgateway/tcpgateway/test/lb"
	"github.com/tcpgateway/tcpgateway/test/traffic"
)

const (
	startAttempts = 3 // a port picked free may be taken before the echo backend binds it
	pollEvery     = 50 * time.Millisecond
	partitions    = 6
)

// cluster is three gateway processes behind the test LB, with their backends and topics.
type cluster struct {
	t        *testing.T
	sc       scale
	bins     gwproc.Binaries
	dir      string
	secret   []byte
	keyFile  string
	brokers  string
	topic    string
	receipts string
	echoURL  string
	hold     *holdBackend
	lb       *lb.LB
	gws      []*gatewayProc
}

func newCluster(t *testing.T, sc scale, gateways int) *cluster {
	t.Helper()
	c := &cluster{t: t, sc: sc, bins: buildBinaries(t), dir: t.TempDir(),
		secret: []byte("drain-test-hs256-secret-0123456789abcdef")}
	c.brokers = kafkatest.Bootstrap(t)
	c.topic = kafkatest.CreateTopic(t, c.brokers, partitions)
	c.receipts = kafkatest.CreateTopic(t, c.brokers, partitions)
	c.keyFile = filepath.Join(c.dir, "hs256.secret")
	if err := os.WriteFile(c.keyFile, c.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	c.hold = newHoldBackend(t)
	c.echoURL = c.startEcho()

	// The gateways start in parallel: each spends most of its start-up positioning its
	// Kafka readers.
	ids := make([]string, gateways)
	c.gws = make([]*gatewayProc, gateways)
	errs := make([]error, gateways)
	var wg sync.WaitGroup
	for i := range gateways {
		ids[i] = fmt.Sprintf("gw-%d", i)
		wg.Go(func() { c.gws[i], errs[i] = c.startGateway(ids[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	var err error
	c.lb, err = lb.New("127.0.0.1:0", lb.Options{DeregistrationDelay: sc.lbDeregistration})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.lb.Close() })
	for _, g := range c.gws {
		c.lb.Add(g.ClientAddr)
	}
	return c
}

// The issuer and audience the test gateways require and the test tokens carry.
const (
	testIssuer   = "https://auth.test"
	testAudience = "tcpgw-test"
)

// token mints an HS256 token for user with the group tags.
func (c *cluster) token(user string, groups []string) string {
	claims := jwt.MapClaims{"sub": user, "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(2 * time.Hour).Unix()}
	if len(groups) > 0 {
		claims["groups"] = groups
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.secret)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// connectFleet connects n clients through the LB (test/traffic).
func (c *cluster) connectFleet(n int) *traffic.Fleet {
	c.t.Helper()
	return traffic.Connect(c.t, traffic.FleetOptions{Addr: c.lb.Addr(), Clients: n, Token: c.token, Tag: "drain-test"})
}

// startProducer pushes to the downlink topic at the scale's rate, to n users (test/traffic).
func (c *cluster) startProducer(n int) *traffic.Producer {
	c.t.Helper()
	return traffic.StartProducer(c.t, traffic.ProducerOptions{Brokers: []string{c.brokers}, Topic: c.topic, Rate: c.sc.rate, Users: n})
}

// startEcho runs test/echobackend on a free port and returns its URL.
func (c *cluster) startEcho() string {
	c.t.Helper()
	var last error
	for range startAttempts {
		addrs, err := gwproc.FreeAddrs(1)
		if err != nil {
			c.t.Fatal(err)
		}
		p, err := gwproc.Start(c.t, "echobackend", c.bins.Echo, "-listen", addrs[0])
		if err != nil {
			c.t.Fatal(err)
		}
		if last = gwproc.WaitDial(p, addrs[0]); last == nil {
			return "http://" + addrs[0]
		}
	}
	c.t.Fatal(last)
	return ""
}

// gatewayProc is one gateway process, with the drain phases it logs.
type gatewayProc struct {
	*gwproc.Gateway
	phases *gwproc.Tap
}

// config is the YAML the process reads: generous limits, the drain knobs of the scale, the
// echo route on test/echobackend and the hold route on the in-test backend.
func (c *cluster) config(id, clients, admin string) config.Config {
	return config.Config{
		ServerID: id,
		Listen:   config.Listen{Clients: clients, Admin: admin},
		Limits: config.Limits{
			RequestsPerSecond: 10000,
			RequestBurst:      10000,
			// The whole fleet comes from 127.0.0.1, and reconnects at once after a kill.
			PerAddress: config.AddressLimits{MaxConnections: 100000, HandshakesPerSecond: 100000, HandshakeBurst: 100000},
		},
		Auth: config.Auth{JWT: &config.JWTAuth{HS256SecretFile: c.keyFile, Issuer: testIssuer, Audience: testAudience}},
		Routes: []config.Route{
			{Service: "echo", URL: c.echoURL, Timeout: dur(10 * time.Second)},
			// Held requests outlive the whole drain.
			{Service: "hold", URL: c.hold.srv.URL, Timeout: dur(2 * time.Minute)},
		},
		Kafka:   config.Kafka{Brokers: []string{c.brokers}, DownlinkTopic: c.topic, ReceiptsTopic: c.receipts},
		Drain:   c.sc.drain,
		Logging: config.Logging{Level: "info", Format: "json"},
	}
}

// startGateway starts a gateway process with the cluster's configuration and waits for /readyz.
func (c *cluster) startGateway(id string) (*gatewayProc, error) {
	g, err := gwproc.StartGateway(c.t, gwproc.GatewayOptions{Bin: c.bins.Gateway, Dir: c.dir, ID: id,
		Config: func(clients, admin string) config.Config { return c.config(id, clients, admin) }})
	if err != nil {
		return nil, err
	}
	return &gatewayProc{Gateway: g, phases: g.Log.Tap(isDrainPhase)}, nil
}

// waitSessions waits until the gateways together hold n sessions (each registered with its
// gateway's downlink, so records pushed from now on reach it).
func (c *cluster) waitSessions(n int) map[string]int {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		per := map[string]int{}
		total := 0
		var err error
		for _, g := range c.gws {
			var st gwproc.Status
			if st, err = g.Status(); err != nil {
				break
			}
			per[g.ID] = st.Sessions
			total += st.Sessions
		}
		if err == nil && total == n {
			return per
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("gateways hold %d sessions (%v, err %v), want %d", total, per, err, n)
		}
		time.Sleep(pollEvery) // session counts are only visible through /status
	}
}

type drainPhase struct {
	phase string
	since time.Duration
}

// drainLogLine is the part of the gateway's JSON log lines about the drain.
type drainLogLine struct {
	Msg        string `json:"msg"`
	Phase      string `json:"phase"`
	SinceStart string `json:"sinceStart"`
	Took       string `json:"took"`
}

func isDrainPhase(line string) bool {
	return strings.Contains(line, `"drain phase done"`) || strings.Contains(line, `"drain finished"`)
}

// drainPhases are the phases the gateway logged, in order, with their end since the start.
func (g *gatewayProc) drainPhases() []drainPhase {
	var out []drainPhase
	for _, s := range g.phases.Lines() {
		var rec drainLogLine
		if json.Unmarshal([]byte(s), &rec) != nil {
			continue
		}
		switch rec.Msg {
		case "drain phase done":
			d, _ := time.ParseDuration(rec.SinceStart)
			out = append(out, drainPhase{rec.Phase, d})
		case "drain finished":
			d, _ := time.ParseDuration(rec.Took)
			out = append(out, drainPhase{"finished", d})
		}
	}
	return out
}

// holdBackend is an uplink backend that holds every request until released: requests in
// flight across a drain.
type holdBackend struct {
	srv     *httptest.Server
	entered chan struct{} // one value per request that arrived
	release chan struct{}
	once    sync.Once
	count   atomic.Int64
}

func newHoldBackend(t *testing.T) *holdBackend {
	h := &holdBackend{entered: make(chan struct{}, 100000), release: make(chan struct{})}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.count.Add(1)
		h.entered <- struct{}{}
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
		_, _ = fmt.Fprintf(w, "released %s", body)
	}))
	t.Cleanup(func() {
		h.releaseAll()
		h.srv.Close()
	})
	return h
}

func (h *holdBackend) releaseAll() { h.once.Do(func() { close(h.release) }) }

// waitEntered waits until n requests arrived.
func (h *holdBackend) waitEntered(n int, limit time.Duration) error {
	timeout := time.After(limit)
	for i := range n {
		select {
		case <-h.entered:
		case <-timeout:
			return fmt.Errorf("%d of %d held requests reached the backend after %s", i, n, limit)
		}
	}
	return nil
}
