package drain

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/client"
	"github.com/tcpgateway/tcpgateway/gateway/protocol/pb"
)

// Groups: every third client carries one of groupCount group tags.
const groupCount = 5

// connectParallel bounds concurrent handshakes while the fleet connects.
const connectParallel = 32

// fleet is the SDK clients of a test, each a distinct user, recording what its app sees.
type fleet struct {
	t       *testing.T
	clients []*appClient
	// changed is signalled (without blocking) on every push, connect and disconnect: the
	// waits below re-check their condition when it fires.
	changed chan struct{}
}

type connectEvent struct {
	at           time.Time
	server       string
	resumed      bool // the handshake resumed (HandshakeAck.resume set)
	status       pb.ResumeResult_Status
	notRecovered []*pb.Position
}

type disconnectEvent struct {
	at     time.Time
	goAway *pb.GoAway // nil: not a GOAWAY (connection lost, error)
	err    string
}

// appClient is one SDK client and what its application saw.
type appClient struct {
	idx   int
	user  string
	group int // -1: none
	cl    *client.Client
	f     *fleet

	mu          sync.Mutex
	bcast       []uint8 // deliveries per broadcast seq
	own         []uint8 // deliveries per seq of this user's records
	grp         []uint8 // deliveries per seq of this client's group's records
	lastOwn     int
	lastGrp     int
	problems    []string // misdeliveries, order violations, bad payloads (first few)
	problemN    int
	connects    []connectEvent
	disconnects []disconnectEvent
	goAwayed    chan struct{} // closed at the first GOAWAY
	goAwayOnce  sync.Once
}

func userName(i int) string  { return "user-" + strconv.Itoa(i) }
func groupName(g int) string { return "group-" + strconv.Itoa(g) }

func groupOf(i int) int {
	if i%3 != 0 {
		return -1
	}
	return (i / 3) % groupCount
}

// connectFleet connects n clients through the LB.
func (c *cluster) connectFleet(n int) *fleet {
	c.t.Helper()
	f := &fleet{t: c.t, changed: make(chan struct{}, 1)}
	for i := range n {
		f.clients = append(f.clients, &appClient{idx: i, user: userName(i), group: groupOf(i), f: f,
			lastOwn: -1, lastGrp: -1, goAwayed: make(chan struct{})})
	}
	sem := make(chan struct{}, connectParallel)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, ac := range f.clients {
		var groups []string
		if ac.group >= 0 {
			groups = []string{groupName(ac.group)}
		}
		token := c.token(ac.user, groups)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cl, err := client.Connect(ctx, client.Options{
				Addr:             c.lb.Addr(),
				Token:            token,
				ClientVersion:    "drain-test",
				HandshakeTimeout: 5 * time.Second,
				Reconnect:        client.Backoff{Initial: 100 * time.Millisecond, Max: time.Second},
				OnPush:           ac.onPush,
				OnConnect:        ac.onConnect,
				OnDisconnect:     ac.onDisconnect,
			})
			if err != nil {
				errs[i] = fmt.Errorf("client %d: %w", i, err)
				return
			}
			ac.mu.Lock()
			ac.cl = cl
			ac.mu.Unlock()
		})
	}
	wg.Wait()
	// Closed before the LB and the gateways (cleanups run last-registered first), so the
	// teardown causes no reconnect storm.
	c.t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, ac := range f.clients {
			if cl := ac.client(); cl != nil {
				wg.Go(func() { _ = cl.Close() })
			}
		}
		wg.Wait()
	})
	if err := errors.Join(errs...); err != nil {
		c.t.Fatal(err)
	}
	return f
}

func (ac *appClient) client() *client.Client {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	return ac.cl
}

func (f *fleet) signal() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (ac *appClient) onConnect(ack *pb.HandshakeAck) {
	ev := connectEvent{at: time.Now(), server: ack.GetServerId()}
	if r := ack.GetResume(); r != nil {
		ev.resumed, ev.status, ev.notRecovered = true, r.GetStatus(), r.GetNotRecovered()
	}
	ac.mu.Lock()
	ac.connects = append(ac.connects, ev)
	ac.mu.Unlock()
	ac.f.signal()
}

func (ac *appClient) onDisconnect(err error) {
	ev := disconnectEvent{at: time.Now()}
	if err != nil {
		ev.err = err.Error()
	}
	var ga *client.GoAwayError
	if errors.As(err, &ga) {
		ev.goAway = ga.GoAway
		ac.goAwayOnce.Do(func() { close(ac.goAwayed) })
	}
	ac.mu.Lock()
	ac.disconnects = append(ac.disconnects, ev)
	ac.mu.Unlock()
	ac.f.signal()
}

// onPush records a push: payloads are "b:<seq>" (broadcast), "u:<user index>:<seq>" and
// "g:<group>:<seq>", numbered per target from 0 by the producer.
func (ac *appClient) onPush(p *pb.Push) {
	kind, target, seq, err := parsePayload(string(p.GetPayload()))
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
		if target != ac.idx {
			ac.problem("received %q meant for user %d", p.GetPayload(), target)
			return
		}
		ac.own = count(ac.own, seq)
		if seq <= ac.lastOwn {
			ac.problem("own record %d after %d: out of order", seq, ac.lastOwn)
		}
		ac.lastOwn = max(ac.lastOwn, seq)
	case 'g':
		if target != ac.group {
			ac.problem("received %q meant for group %d (member of %d)", p.GetPayload(), target, ac.group)
			return
		}
		ac.grp = count(ac.grp, seq)
		if seq <= ac.lastGrp {
			ac.problem("group record %d after %d: out of order", seq, ac.lastGrp)
		}
		ac.lastGrp = max(ac.lastGrp, seq)
	}
}

func (ac *appClient) problem(format string, args ...any) {
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
func (ac *appClient) server() string {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if len(ac.connects) == 0 {
		return ""
	}
	return ac.connects[len(ac.connects)-1].server
}

// events returns copies of the connect and disconnect history.
func (ac *appClient) events() ([]connectEvent, []disconnectEvent) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	return append([]connectEvent(nil), ac.connects...), append([]disconnectEvent(nil), ac.disconnects...)
}

// on lists the clients currently connected to server.
func (f *fleet) on(server string) []*appClient {
	var out []*appClient
	for _, ac := range f.clients {
		if ac.server() == server {
			out = append(out, ac)
		}
	}
	return out
}

// waitUntil waits until cond holds, re-checking after fleet events (at most every
// minRecheck, since pushes arrive by the thousand per second, and at least every 200 ms),
// for at most limit.
func (f *fleet) waitUntil(limit time.Duration, cond func() bool) bool {
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
