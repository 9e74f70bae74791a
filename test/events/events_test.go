// Package events tests session events end to end: real gateway processes (test/gwproc), a
// real Kafka broker, the Go client SDK as the client and the push SDK's presence view as the
// backend.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/control"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

func TestMain(m *testing.M) {
	code := kafkatest.Main(m)
	gwproc.Cleanup()
	os.Exit(code)
}

const (
	partitions = 3
	issuer     = "https://auth.test"
	audience   = "tcpgw-test"
)

var secret = []byte("events-test-hs256-secret-0123456789abcdef")

type env struct {
	t                          testing.TB
	bins                       gwproc.Binaries
	dir, keyFile, brokers      string
	downlink, receipts, events string
}

func newEnv(t testing.TB) *env {
	if testing.Short() {
		t.Skip("starts gateway processes and needs Kafka; not in -short")
	}
	e := &env{t: t, bins: gwproc.Build(t, false), dir: t.TempDir()}
	e.keyFile = filepath.Join(e.dir, "hs256.secret")
	if err := os.WriteFile(e.keyFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	e.brokers = kafkatest.Bootstrap(t)
	e.downlink = kafkatest.CreateTopic(t, e.brokers, partitions)
	e.receipts = kafkatest.CreateTopic(t, e.brokers, partitions)
	e.events = kafkatest.CreateTopic(t, e.brokers, partitions)
	return e
}

func (e *env) start(id string, configure func(*config.Config)) *gwproc.Gateway {
	e.t.Helper()
	g, err := gwproc.StartGateway(e.t, gwproc.GatewayOptions{Bin: e.bins.Gateway, Dir: e.dir, ID: id,
		Config: func(clients, admin string) config.Config {
			c := config.Config{
				ServerID: id,
				Listen:   config.Listen{Clients: clients, Admin: admin},
				Limits: config.Limits{PerAddress: config.AddressLimits{
					MaxConnections: 10000, HandshakesPerSecond: 10000, HandshakeBurst: 10000}},
				Auth: config.Auth{JWT: &config.JWTAuth{HS256SecretFile: e.keyFile, Issuer: issuer, Audience: audience}},
				Kafka: config.Kafka{Brokers: []string{e.brokers}, DownlinkTopic: e.downlink, ReceiptsTopic: e.receipts,
					EventsTopic: e.events},
				Drain: config.Drain{
					DeregistrationDelay: config.Duration{Duration: 100 * time.Millisecond},
					SpreadWindow:        config.Duration{Duration: 200 * time.Millisecond},
					FlushTimeout:        config.Duration{Duration: 2 * time.Second},
					HardDeadline:        config.Duration{Duration: 15 * time.Second},
				},
				Logging: config.Logging{Level: "info", Format: "json"},
			}
			if configure != nil {
				configure(&c)
			}
			return c
		}})
	if err != nil {
		e.t.Fatal(err)
	}
	return g
}

func token(t testing.TB, user string) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "iss": issuer, "aud": audience, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// backend reads every partition of the events topic from its start, as a backend would:
// each event in arrival order per partition, and a presence view folded from them.
type backend struct {
	presence *push.Presence
	mu       sync.Mutex
	byUser   map[string][]*pb.SessionEvent
	readers  []*kafka.Reader
	wg       sync.WaitGroup
}

func watch(t *testing.T, brokers, topic string) *backend {
	b := &backend{presence: push.NewPresence(), byUser: map[string][]*pb.SessionEvent{}}
	ctx, cancel := context.WithCancel(context.Background())
	for part := range partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, Topic: topic, Partition: part,
			MaxWait: 100 * time.Millisecond, StartOffset: kafka.FirstOffset})
		b.readers = append(b.readers, r)
		b.wg.Go(func() {
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					return
				}
				ev := &pb.SessionEvent{}
				if proto.Unmarshal(m.Value, ev) == nil {
					b.mu.Lock()
					b.byUser[string(m.Key)] = append(b.byUser[string(m.Key)], ev)
					b.mu.Unlock()
				}
				_ = b.presence.ApplyRecord(m.Value)
			}
		})
	}
	t.Cleanup(func() {
		cancel()
		for _, r := range b.readers {
			r.Close()
		}
		b.wg.Wait()
	})
	return b
}

func (b *backend) events(user string) []*pb.SessionEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*pb.SessionEvent(nil), b.byUser[user]...)
}

// waitKinds waits until the user's events are n, and returns them.
func (b *backend) waitKinds(t *testing.T, user string, n int) []*pb.SessionEvent {
	t.Helper()
	wait.For(t, 30*time.Second, fmt.Sprintf("%d events of %s", n, user), func() bool { return len(b.events(user)) >= n })
	return b.events(user)
}

func describe(evs []*pb.SessionEvent) []string {
	var out []string
	for _, ev := range evs {
		s := ev.Kind.String() + "@" + ev.ServerId
		if ev.CloseReason != "" {
			s += "(" + ev.CloseReason + ")"
		}
		out = append(out, s)
	}
	return out
}

// TestScriptedSequence: connect, replace by a second connection with the same session id,
// drain → resume on another gateway, disconnect. The backend sees each event once, per user
// in each pod's order, and its presence view follows.
func TestScriptedSequence(t *testing.T) {
	e := newEnv(t)
	ga := e.start("gw-a", nil)
	gb := e.start("gw-b", nil)
	be := watch(t, e.brokers, e.events)
	const user = "alice"

	// The clients dial whichever gateway target names: the test's load balancer.
	var target sync.Map
	target.Store("addr", ga.ClientAddr)
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		addr, _ := target.Load("addr")
		return (&net.Dialer{}).DialContext(ctx, network, addr.(string))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, err := client.Connect(ctx, client.Options{Addr: "lb", DialContext: dial, Token: token(t, user),
		SessionID: "phone", DeviceID: "dev-1", ClientVersion: "test/1", NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	wait.For(t, 30*time.Second, "alice online on gw-a", func() bool {
		on := be.presence.User(user)
		return len(on) == 1 && on[0].ServerID == "gw-a"
	})
	firstConn := be.presence.User(user)[0].ConnectionID

	second, err := client.Connect(ctx, client.Options{Addr: "lb", DialContext: dial, Token: token(t, user),
		SessionID: "phone", DeviceID: "dev-2", ClientVersion: "test/2",
		Reconnect: client.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	be.waitKinds(t, user, 4)

	target.Store("addr", gb.ClientAddr) // the load balancer sends new connections to gw-b
	if r := ga.PreStop(); !r.OK() {
		t.Fatalf("drain of gw-a: %+v", r)
	}
	be.waitKinds(t, user, 6)
	wait.For(t, 30*time.Second, "alice online on gw-b", func() bool {
		on := be.presence.User(user)
		return len(on) == 1 && on[0].ServerID == "gw-b" && on[0].DeviceID == "dev-2"
	})
	second.Close()
	evs := be.waitKinds(t, user, 7)
	wait.For(t, 30*time.Second, "alice offline", func() bool { return be.presence.Users() == 0 })

	got := describe(evs)
	t.Logf("events of %s: %v", user, got)
	if len(evs) != 7 {
		t.Fatalf("got %d events, want 7: %v", len(evs), got)
	}
	// gw-a's events are in gw-a's order; gw-b's RESUMED may come before or after gw-a's
	// last DISCONNECTED (two producers). The drained client leaves on its own after the
	// GOAWAY DRAINING: client_closed, as tcpgw_closes_total counts it.
	wantA := []string{"KIND_CONNECTED@gw-a", "KIND_REPLACED@gw-a", "KIND_CONNECTED@gw-a", "KIND_DISCONNECTED@gw-a(replaced)", "KIND_DISCONNECTED@gw-a(client_closed)"}
	wantB := []string{"KIND_RESUMED@gw-b", "KIND_DISCONNECTED@gw-b(client_closed)"}
	var gotA, gotB []string
	var lastSeq = map[string]uint64{}
	for i, ev := range evs {
		if ev.Seq <= lastSeq[ev.ServerId] {
			t.Fatalf("event %d (%s) seq %d after %d", i, got[i], ev.Seq, lastSeq[ev.ServerId])
		}
		lastSeq[ev.ServerId] = ev.Seq
		if ev.ServerId == "gw-a" {
			gotA = append(gotA, got[i])
		} else {
			gotB = append(gotB, got[i])
		}
	}
	if fmt.Sprint(gotA) != fmt.Sprint(wantA) || fmt.Sprint(gotB) != fmt.Sprint(wantB) {
		t.Fatalf("events %v, want gw-a %v and gw-b %v", got, wantA, wantB)
	}
	if evs[0].ConnectionId != firstConn || evs[1].ConnectionId != firstConn || evs[1].ReplacedBy != evs[2].ConnectionId ||
		evs[3].ConnectionId != firstConn {
		t.Fatalf("connection ids do not match the story: %v", evs)
	}
	var resumed *pb.SessionEvent
	for _, ev := range evs {
		if ev.Kind == pb.SessionEvent_KIND_RESUMED {
			resumed = ev
		}
		if ev.UserId != user || ev.SessionId != "phone" || ev.RemoteAddress == "" {
			t.Fatalf("event without its identity: %v", ev)
		}
	}
	if resumed.ResumeStatus != pb.ResumeResult_STATUS_COMPLETE || resumed.DeviceId != "dev-2" || resumed.ClientVersion != "test/2" {
		t.Fatalf("RESUMED %v", resumed)
	}
	if d := evs[len(evs)-1]; d.DurationMs <= 0 {
		t.Fatalf("DISCONNECTED without a duration: %v", d)
	}
	if st := be.presence.Stats(); st.Missing != 0 || len(st.Skipped) != 0 {
		t.Fatalf("presence stats %+v", st)
	}
}

// TestEventsKafkaUnavailable: the events topic does not exist, so Kafka refuses every
// event. Handshakes go on as before; the events are dropped and counted.
func TestEventsKafkaUnavailable(t *testing.T) {
	e := newEnv(t)
	g := e.start("gw-x", func(c *config.Config) {
		c.Kafka.EventsTopic = kafkatest.TopicName(t) + "-missing"
		c.Kafka.EventsQueue = 4
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lost := g.Log.TapContaining("session events lost")
	const n = 200
	start := time.Now()
	for i := range n {
		c, err := client.Connect(ctx, client.Options{Addr: g.ClientAddr, Token: token(t, fmt.Sprintf("u%d", i)), NoReconnect: true})
		if err != nil {
			t.Fatalf("handshake %d with the events topic unavailable: %v", i, err)
		}
		c.Close()
	}
	closed := time.Now()
	t.Logf("%d connect+close with events failing: %s", n, closed.Sub(start))
	// What the last check saw, said if the wait fails.
	var seen string
	defer func() {
		if t.Failed() {
			lines := lost.Lines()
			t.Logf("last seen: %s; gateway exited: %v; %d \"session events lost\" lines, the last: %s\ngateway log tail:\n%s",
				seen, g.Exited(), lost.Count(), strings.Join(lines[max(0, len(lines)-5):], "\n"), g.Log.Tail(20))
		}
	}()
	// kafka-go fails a batch for a topic missing from its cached metadata at once, without
	// a produce request or retries: every event is accounted for within milliseconds of the
	// last close (docs/benchmarks.md). The bound is for a stalled machine only.
	wait.For(t, 30*time.Second, "every event accounted for", func() bool {
		ms, err := g.Metrics()
		if err != nil {
			seen = "no metrics: " + err.Error()
			return false
		}
		seen = eventCounts(ms)
		dropped := ms.Value("tcpgw_session_events_dropped_total", "reason", "queue_full") +
			ms.Value("tcpgw_session_events_dropped_total", "reason", "write_failed")
		return dropped == 2*n && ms.Value("tcpgw_handshakes_total", "result", "ok") == n
	})
	t.Logf("every event accounted for %s after the last close", time.Since(closed))
	ms, err := g.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if ms.Value("tcpgw_session_events_published_total", "kind", "connected") != 0 {
		t.Fatal("events published to a topic that does not exist")
	}
	t.Logf("%s", eventCounts(ms))
	// One "session events lost" line, then at most one per 10 s (gateway/events/losslog.go),
	// not one per failed batch; each names the missing topic as such.
	lines := lost.Lines()
	if limit := 1 + int(time.Since(start)/(10*time.Second)); len(lines) > limit {
		t.Fatalf("%d \"session events lost\" lines in %s, want at most %d", len(lines), time.Since(start), limit)
	}
	for _, l := range lines {
		if !strings.Contains(l, "topics_missing") {
			t.Fatalf("a \"session events lost\" line without reason topics_missing: %s", l)
		}
	}
}

// eventCounts says what a scrape counts of session events, handshakes and connections.
func eventCounts(ms gwproc.Metrics) string {
	return fmt.Sprintf("dropped queue_full %v write_failed %v stopped %v; published connected %v disconnected %v; "+
		"handshakes ok %v; connections open %v, closed %v",
		ms.Value("tcpgw_session_events_dropped_total", "reason", "queue_full"),
		ms.Value("tcpgw_session_events_dropped_total", "reason", "write_failed"),
		ms.Value("tcpgw_session_events_dropped_total", "reason", "stopped"),
		ms.Value("tcpgw_session_events_published_total", "kind", "connected"),
		ms.Value("tcpgw_session_events_published_total", "kind", "disconnected"),
		ms.Value("tcpgw_handshakes_total", "result", "ok"),
		ms.Value("tcpgw_connections"), ms.Value("tcpgw_closes_total"))
}

// TestSessionsOnlyOnControlSocket: `gateway sessions -user U` over the pod-local control
// socket lists U's sessions; the admin port (reachable by other pods) serves no such thing,
// under any method.
func TestSessionsOnlyOnControlSocket(t *testing.T) {
	e := newEnv(t)
	g := e.start("gw-s", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{Addr: g.ClientAddr, Token: token(t, "carol"), SessionID: "tablet", DeviceID: "dev-c", NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	out, err := exec.CommandContext(ctx, g.Bin, "sessions", "-socket", g.Config.Listen.Control, "-user", "carol").Output()
	if err != nil {
		t.Fatalf("gateway sessions: %v", err)
	}
	var list []control.Session
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(list) != 1 || list[0].SessionID != "tablet" || list[0].DeviceID != "dev-c" || list[0].Remote == "" {
		t.Fatalf("carol's sessions: %s", out)
	}

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequestWithContext(ctx, method, "http://"+g.AdminAddr+control.SessionsPath+"?user=carol", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "tablet") {
			t.Fatalf("admin port %s %s: %s %q, want 404 without the session", method, control.SessionsPath, resp.Status, body)
		}
	}
}
