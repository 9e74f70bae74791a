package browser

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
	"github.com/tcpgateway/tcpgateway/test/lb"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// The issuer and audience the test gateways require and the page's token carries.
const (
	testIssuer   = "https://auth.test"
	testAudience = "tcpgw-browser-test"
	wsPath       = "/tcpgw"
	partitions   = 3
)

// Bounds of the scenario's waits (a 2-core box shared with a JVM broker and two gateways).
const (
	connectTimeout = 30 * time.Second // the page's first handshake, from the page's load
	settleTimeout  = 30 * time.Second // the last pushes of the stream in the page after the drain
)

// The plain pushes sent across the drain: one every streamEvery, from before the drain until
// the page has received streamAfter of them on the second gateway (at most streamMax).
const (
	streamEvery = 25 * time.Millisecond
	streamAfter = 20
	streamMax   = 2000
)

// Issue 18: a page in a real headless Chromium, its SDK connected over WebSocket through the
// LB to a real gateway, receives a push and acks it (the publisher's PushAndWaitAck returns
// ACKED for the page's session); then its gateway drains through the preStop path while a
// stream of pushes flows, onto a second gateway behind the LB. The SDK in the page leaves on
// GOAWAY DRAINING, resumes COMPLETE on the second gateway, and the page sees every push once,
// in order; an ack-required push after the move is ACKED too.
func TestBrowserPushAckAndDrainResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium, two gateway processes and needs Kafka; not in -short")
	}
	e := newEnv(t)
	page := Serve(t, Config{URL: "ws://" + e.lb.Addr() + wsPath, Token: e.token("alice"), ReconnectInitialMs: 100, ReconnectMaxMs: 1000})
	gws := e.startGateways(page.Origin(), "gw-0", "gw-1")
	first, second := gws[0], gws[1]
	e.lb.Add(first.WebSocketAddr) // the page lands on gw-0; gw-1 joins the LB for the drain

	tab := Launch(t).Open(page.URL)
	s := tab.WaitState(t, connectTimeout, "the page's first handshake", func(s State) bool { return len(s.Connects) == 1 })
	if c := s.Connects[0]; c.ServerID != first.ID || c.UserID != "alice" || c.Resume != "" {
		t.Fatalf("first handshake %+v: want a new session of alice on %s", c, first.ID)
	}
	session := s.Connects[0].SessionID
	waitSessions(t, first, 1)

	// A push that asks for an ack: the page acks it, the publisher sees the receipt.
	AckPush(t, tab, e.pub, "alice", session, "ack-1")

	// The stream, across the drain.
	stop := make(chan struct{})
	type result struct {
		ids []string
		err error
	}
	streamed := make(chan result, 1)
	go func() {
		ids, err := Stream(e.pub, "alice", "s-", streamMax, streamEvery, stop)
		streamed <- result{ids, err}
	}()
	tab.WaitState(t, settleTimeout, "the first pushes of the stream", func(s State) bool { return s.Has("s-009") })

	// preStop: the LB sends new connections to gw-1 only, then `gateway drain -wait`, SIGTERM.
	e.lb.Add(second.WebSocketAddr)
	e.lb.Remove(first.WebSocketAddr)
	t0 := time.Now()
	dr := first.PreStop()
	if err := first.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	d := first.Config.Drain
	exitCode, exitErr := first.WaitExit(time.Until(t0.Add(d.TerminationGracePeriod())))
	if !dr.OK() || exitErr != nil || exitCode != 0 {
		t.Errorf("drain: gateway drain -wait exited %d saying %q (err %v); the process exited %d (%v)\n%s",
			dr.ExitCode, dr.Output, dr.Err, exitCode, exitErr, first.Log.Tail(20))
	}
	tab.WaitState(t, settleTimeout, fmt.Sprintf("%d pushes of the stream after the page resumed", streamAfter), func(s State) bool {
		return len(s.Connects) >= 2 && pushesSince(s, s.Connects[1].At) >= streamAfter
	})
	close(stop)
	r := <-streamed
	if r.err != nil {
		t.Fatalf("pushing the stream: %v", r.err)
	}
	want := append([]string{"ack-1"}, r.ids...)
	tab.WaitState(t, settleTimeout, "every push of the stream", func(s State) bool { return s.Has(want[len(want)-1]) })
	AckPush(t, tab, e.pub, "alice", session, "ack-2")
	want = append(want, "ack-2")

	s, err := tab.State()
	if err != nil {
		t.Fatal(err)
	}
	diff := Compare(s.IDs(), want)
	if !diff.OK() {
		t.Errorf("the page's pushes: %s", diff)
	}
	if len(s.Connects) != 2 || len(s.Disconnects) != 1 {
		t.Fatalf("the page saw %d handshakes and %d disconnects, want 2 and 1: %+v", len(s.Connects), len(s.Disconnects), s)
	}
	if dc := s.Disconnects[0]; dc.GoAway != "DRAINING" {
		t.Errorf("the page left %s on %+v, want a GOAWAY DRAINING", first.ID, dc)
	}
	if c := s.Connects[1]; c.ServerID != second.ID || c.SessionID != session || c.Resume != "COMPLETE" {
		t.Errorf("second handshake %+v: want session %s resumed COMPLETE on %s", c, session, second.ID)
	}
	for _, p := range s.Pushes {
		if p.AckRequired != (p.ID == "ack-1" || p.ID == "ack-2") || (p.AckRequired && (!p.Acked || p.AckError != "")) {
			t.Errorf("push %+v: only ack-1 and ack-2 ask for an ack, and the page acked each", p)
		}
	}
	if len(s.Refused) > 0 {
		t.Errorf("the gateways refused frames of the page: %+v", s.Refused)
	}
	// The stream spans the move: pushes before the page left gw-0 (and after it resumed, which
	// the stream waited for).
	before, after := 0, 0
	for _, p := range s.Pushes[min(1, len(s.Pushes)):max(0, len(s.Pushes)-1)] {
		switch {
		case p.At < s.Disconnects[0].At:
			before++
		case p.At >= s.Connects[1].At:
			after++
		}
	}
	if before == 0 || after == 0 {
		t.Errorf("%d pushes of the stream arrived before the page left %s and %d after it resumed: the stream did not span the move", before, first.ID, after)
	}
	back := time.UnixMilli(s.Connects[1].At).Sub(time.UnixMilli(s.Disconnects[0].At))
	t.Logf("FIGURES browser drain: %d pushes (%d of the stream before the move, %d after), %d lost, %d duplicated; the page left %s on GOAWAY %s and resumed %s on %s %v later; drain took %v",
		len(s.Pushes), before, after, len(diff.Missing), len(diff.Repeated), first.ID, s.Disconnects[0].GoAway, s.Connects[1].Resume, second.ID, back.Round(time.Millisecond), dr.At.Sub(t0).Round(time.Millisecond))
}

// env is what the scenario's gateways share: Kafka topics, the token key, the publisher and
// the LB in front of the WebSocket listeners.
type env struct {
	t        *testing.T
	bins     gwproc.Binaries
	dir      string
	secret   []byte
	keyFile  string
	brokers  string
	topic    string
	receipts string
	pub      *push.Publisher
	lb       *lb.LB
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, bins: gwproc.Build(t, false), dir: t.TempDir(), secret: []byte("browser-test-hs256-secret-0123456789")}
	e.brokers = kafkatest.Bootstrap(t)
	e.topic = kafkatest.CreateTopic(t, e.brokers, partitions)
	e.receipts = kafkatest.CreateTopic(t, e.brokers, partitions)
	e.keyFile = filepath.Join(e.dir, "hs256.secret")
	if err := os.WriteFile(e.keyFile, e.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if e.pub, err = push.New(ctx, push.Options{Brokers: []string{e.brokers}, Topic: e.topic, ReceiptsTopic: e.receipts}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.pub.Close() })
	// The LB deregisters a backend at once: the test removes it before the drain starts.
	if e.lb, err = lb.New("127.0.0.1:0", lb.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.lb.Close() })
	return e
}

// token mints an HS256 token for user.
func (e *env) token(user string) string {
	claims := jwt.MapClaims{"sub": user, "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(2 * time.Hour).Unix()}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(e.secret)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// startGateways starts one gateway per id, each with a WebSocket listener (on a free port:
// Gateway.WebSocketAddr) that accepts pages of origin, and waits for their readiness.
func (e *env) startGateways(origin string, ids ...string) []*gwproc.Gateway {
	e.t.Helper()
	gws := make([]*gwproc.Gateway, len(ids))
	for i, id := range ids {
		g, err := gwproc.StartGateway(e.t, gwproc.GatewayOptions{Bin: e.bins.Gateway, Dir: e.dir, ID: id, WebSocket: true,
			Config: func(clients, admin string) config.Config { return e.config(id, clients, admin, origin) }})
		if err != nil {
			e.t.Fatal(err)
		}
		gws[i] = g
	}
	return gws
}

func dur(d time.Duration) config.Duration { return config.Duration{Duration: d} }

// config is a gateway's: JWT auth, the Kafka downlink, a WebSocket listener for origin and a
// short drain (a single client to move).
func (e *env) config(id, clients, admin, origin string) config.Config {
	return config.Config{
		ServerID: id,
		Listen: config.Listen{Clients: clients, Admin: admin,
			WebSocket: &config.ListenWebSocket{Path: wsPath, AllowedOrigins: []string{origin}}},
		Auth:  config.Auth{JWT: &config.JWTAuth{HS256SecretFile: e.keyFile, Issuer: testIssuer, Audience: testAudience}},
		Kafka: config.Kafka{Brokers: []string{e.brokers}, DownlinkTopic: e.topic, ReceiptsTopic: e.receipts},
		Drain: config.Drain{
			DeregistrationDelay: dur(300 * time.Millisecond),
			SpreadWindow:        dur(time.Second),
			FlushTimeout:        dur(3 * time.Second),
			HardDeadline:        dur(15 * time.Second),
		},
		Logging: config.Logging{Level: "info", Format: "json"},
	}
}

// pushesSince counts the pushes the page received at or after at (the page's clock).
func pushesSince(s State, at int64) int {
	n := 0
	for _, p := range s.Pushes {
		if p.At >= at {
			n++
		}
	}
	return n
}

// waitSessions waits until g holds n sessions, each registered with its downlink.
func waitSessions(t *testing.T, g *gwproc.Gateway, n int) {
	t.Helper()
	wait.For(t, 10*time.Second, fmt.Sprintf("%d sessions on %s", n, g.ID), func() bool {
		st, err := g.Status()
		return err == nil && st.Sessions == n
	})
}
