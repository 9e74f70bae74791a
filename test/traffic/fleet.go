package traffic

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Groups: every third client carries one of groupCount group tags.
const groupCount = 5

// connectParallel bounds concurrent handshakes while the Fleet connects.
const connectParallel = 32

// Fleet is the SDK clients of a test, each a distinct user, recording what its app sees.
type Fleet struct {
	t       testing.TB
	Clients []*App
	// changed is signalled (without blocking) on every push, connect and disconnect: the
	// waits below re-check their condition when it fires.
	changed chan struct{}
}

// ConnectEvent is a completed handshake.
type ConnectEvent struct {
	At           time.Time
	Server       string
	Resumed      bool // the handshake resumed (HandshakeAck.resume set)
	Status       pb.ResumeResult_Status
	NotRecovered []*pb.Position
}

// DisconnectEvent is a connection's end.
type DisconnectEvent struct {
	At     time.Time
	GoAway *pb.GoAway // nil: not a GOAWAY (connection lost, error)
	Err    string
}

// App is one SDK client and what its application saw.
type App struct {
	Index int
	User  string
	group int // -1: none
	cl    *client.Client
	f     *Fleet

	mu          sync.Mutex
	bcast       []uint8 // deliveries per broadcast seq
	own         []uint8 // deliveries per seq of this user's records
	grp         []uint8 // deliveries per seq of this client's group's records
	lastOwn     int
	lastGrp     int
	problems    []string // misdeliveries, order violations, bad payloads (first few)
	problemN    int
	connects    []ConnectEvent
	disconnects []DisconnectEvent
	goAwayed    chan struct{} // closed at the first GOAWAY
	goAwayOnce  sync.Once
}

func UserName(i int) string  { return "user-" + strconv.Itoa(i) }
func GroupName(g int) string { return "group-" + strconv.Itoa(g) }

func groupOf(i int) int {
	if i%3 != 0 {
		return -1
	}
	return (i / 3) % groupCount
}

// FleetOptions says where and how a fleet connects.
type FleetOptions struct {
	Addr    string // the load balancer
	Clients int
	// First is the index of the first client (user UserName(First)): a second fleet beside
	// one of First clients gets users of its own.
	First int
	// Token mints the auth token of a user with its group tags.
	Token func(user string, groups []string) string
	// Tag is sent as the client version, naming the test in the gateways' logs.
	Tag string
}

// Connect connects o.Clients clients to o.Addr, client i (from o.First) as user
// UserName(i), every third in a group; it fails the test if any cannot connect. They are
// closed when the test ends, or by Close.
func Connect(t testing.TB, o FleetOptions) *Fleet {
	t.Helper()
	f := NewFleet(t, o.First, o.Clients)
	sem := make(chan struct{}, connectParallel)
	errs := make([]error, o.Clients)
	var wg sync.WaitGroup
	for i, ac := range f.Clients {
		token := o.Token(ac.User, ac.Groups())
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cl, err := client.Connect(ctx, client.Options{
				Addr:             o.Addr,
				Token:            token,
				ClientVersion:    o.Tag,
				HandshakeTimeout: 5 * time.Second,
				Reconnect:        client.Backoff{Initial: 100 * time.Millisecond, Max: time.Second},
				OnPush:           ac.onPush,
				OnConnect:        ac.onConnect,
				OnDisconnect:     ac.onDisconnect,
			})
			if err != nil {
				errs[i] = fmt.Errorf("client %d: %w", ac.Index, err)
				return
			}
			ac.mu.Lock()
			ac.cl = cl
			ac.mu.Unlock()
		})
	}
	wg.Wait()
	// Closed before whatever the test started earlier (cleanups run last-registered first):
	// the load balancer and the gateways, so the teardown causes no reconnect storm.
	t.Cleanup(f.Close)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return f
}

// NewFleet makes n apps with no client: indices first..first+n-1 (users and groups as
// Connect gives them), for clients that are not the Go SDK's (another language's, through its
// conformance driver, test/sdkdriver): the test reports what they see with RecordConnect,
// RecordDisconnect and RecordPush, and the checks are those of a connected Fleet.
func NewFleet(t testing.TB, first, n int) *Fleet {
	f := &Fleet{t: t, changed: make(chan struct{}, 1)}
	for i := first; i < first+n; i++ {
		f.Clients = append(f.Clients, &App{Index: i, User: UserName(i), group: groupOf(i), f: f,
			lastOwn: -1, lastGrp: -1, goAwayed: make(chan struct{})})
	}
	return f
}

// Close closes every client of the fleet (they do not reconnect) and waits for them.
// Idempotent.
func (f *Fleet) Close() {
	var wg sync.WaitGroup
	for _, ac := range f.Clients {
		if cl := ac.Client(); cl != nil {
			wg.Go(func() { _ = cl.Close() })
		}
	}
	wg.Wait()
}

// Groups are the group tags of the app's token.
func (ac *App) Groups() []string {
	if ac.group < 0 {
		return nil
	}
	return []string{GroupName(ac.group)}
}

// GoAwayed is closed at the client's first GOAWAY.
func (ac *App) GoAwayed() <-chan struct{} { return ac.goAwayed }

// Client is the SDK client (nil until connected).
func (ac *App) Client() *client.Client {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	return ac.cl
}

func (f *Fleet) signal() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (ac *App) onConnect(ack *pb.HandshakeAck) {
	ev := ConnectEvent{At: time.Now(), Server: ack.GetServerId()}
	if r := ack.GetResume(); r != nil {
		ev.Resumed, ev.Status, ev.NotRecovered = true, r.GetStatus(), r.GetNotRecovered()
	}
	ac.RecordConnect(ev)
}

// RecordConnect records a completed handshake.
func (ac *App) RecordConnect(ev ConnectEvent) {
	ac.mu.Lock()
	ac.connects = append(ac.connects, ev)
	ac.mu.Unlock()
	ac.f.signal()
}

func (ac *App) onDisconnect(err error) {
	ev := DisconnectEvent{At: time.Now()}
	if err != nil {
		ev.Err = err.Error()
	}
	var ga *client.GoAwayError
	if errors.As(err, &ga) {
		ev.GoAway = ga.GoAway
	}
	ac.RecordDisconnect(ev)
}

// RecordDisconnect records a connection's end (a GOAWAY closes GoAwayed).
func (ac *App) RecordDisconnect(ev DisconnectEvent) {
	if ev.GoAway != nil {
		ac.goAwayOnce.Do(func() { close(ac.goAwayed) })
	}
	ac.mu.Lock()
	ac.disconnects = append(ac.disconnects, ev)
	ac.mu.Unlock()
	ac.f.signal()
}

func (ac *App) onPush(p *client.Push) { ac.RecordPush(p.GetPayload()) }

// RecordPush records the payload of a push delivered to the app: payloads are "b:<seq>"
// (broadcast), "u:<user index>:<seq>" and "g:<group>:<seq>", numbered per target from 0 by
// the Producer.
func (ac *App) RecordPush(payload []byte) {
	kind, target, seq, err := parsePayload(string(payload))
	ac.mu.Lock()
	defer ac.mu.Unlock()
	defer ac.f.signal()
	if err != nil {
		ac.problem("%v", err)
		return
	}
	switch kind {
	case 'b':
		ac.bcast = count(ac.bcast, seq)
	case 'u':
		if target != ac.Index {
			ac.problem("received %q meant for user %d", payload, target)
			return
		}
		ac.own = count(ac.own, seq)
		if seq <= ac.lastOwn {
			ac.problem("own record %d after %d: out of order", seq, ac.lastOwn)
		}
		ac.lastOwn = max(ac.lastOwn, seq)
	case 'g':
		if target != ac.group {
			ac.problem("received %q meant for group %d (member of %d)", payload, target, ac.group)
			return
		}
		ac.grp = count(ac.grp, seq)
		if seq <= ac.lastGrp {
			ac.problem("group record %d after %d: out of order", seq, ac.lastGrp)
		}
		ac.lastGrp = max(ac.lastGrp, seq)
	}
}

func (ac *App) problem(format string, args ...any) {
	ac.problemN++
	if len(ac.problems) < 5 {
		ac.problems = append(ac.problems, fmt.Sprintf(format, args...))
	}
}

func count(counts []uint8, seq int) []uint8 {
	for len(counts) <= seq {
		counts = append(counts, 0)
	}
	if counts[seq] < 255 {
		counts[seq]++
	}
	return counts
}

func parsePayload(s string) (kind byte, target, seq int, err error) {
	parts := strings.Split(s, ":")
	bad := fmt.Errorf("unexpected payload %q", s)
	switch {
	case len(parts) == 2 && parts[0] == "b":
		seq, err = strconv.Atoi(parts[1])
		target = -1
	case len(parts) == 3 && (parts[0] == "u" || parts[0] == "g"):
		if target, err = strconv.Atoi(parts[1]); err == nil {
			seq, err = strconv.Atoi(parts[2])
		}
	default:
		return 0, 0, 0, bad
	}
	if err != nil || seq < 0 {
		return 0, 0, 0, bad
	}
	return parts[0][0], target, seq, nil
}

// server is the gateway the client's latest handshake was with.
func (ac *App) Server() string {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if len(ac.connects) == 0 {
		return ""
	}
	return ac.connects[len(ac.connects)-1].Server
}

// events returns copies of the connect and disconnect History.
func (ac *App) Events() ([]ConnectEvent, []DisconnectEvent) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	return append([]ConnectEvent(nil), ac.connects...), append([]DisconnectEvent(nil), ac.disconnects...)
}

// on lists the clients currently connected to server.
func (f *Fleet) On(server string) []*App {
	var out []*App
	for _, ac := range f.Clients {
		if ac.Server() == server {
			out = append(out, ac)
		}
	}
	return out
}

// waitUntil waits until cond holds, re-checking after Fleet events (at most every
// minRecheck, since pushes arrive by the thousand per second, and at least every 200 ms),
// for at most limit.
func (f *Fleet) WaitUntil(limit time.Duration, cond func() bool) bool {
	const minRecheck = 50 * time.Millisecond
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		checked := time.Now()
		select {
		case <-f.changed:
		case <-tick.C:
		case <-deadline.C:
			return cond()
		}
		if gap := minRecheck - time.Since(checked); gap > 0 {
			select {
			case <-time.After(gap):
			case <-deadline.C:
				return cond()
			}
		}
	}
}
