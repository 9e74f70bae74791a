package downlink_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// movingClient connects through a dialer whose destination the test moves, like a load
// balancer that sends the reconnect to another pod.
func (c *cluster) movingClient(user string, to *atomic.Value, box *inbox, acks chan<- *pb.HandshakeAck) *client.Client {
	c.t.Helper()
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()}).SignedString(c.secret)
	if err != nil {
		c.t.Fatal(err)
	}
	cl, err := client.Connect(ctxT(c.t), client.Options{
		Addr: "moving", Token: token,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, to.Load().(string))
		},
		Reconnect: client.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, LostSpread: 200 * time.Millisecond},
		OnPush:    box.add,
		OnConnect: func(a *pb.HandshakeAck) { acks <- a },
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// A session drained from one pod resumes on another while records keep coming: every record
// arrives once, in order, and the resume is complete.
func TestDrainedSessionResumesOnAnotherPodWithoutLossOrDuplicates(t *testing.T) {
	c := newCluster(t, 2, 3)
	c.waitReady()
	var to atomic.Value
	to.Store(c.gws[0].ClientAddr())
	box := &inbox{signal: make(chan struct{}, 1)}
	acks := make(chan *pb.HandshakeAck, 4)
	c.movingClient("alice", &to, box, acks)
	if a := <-acks; a.ServerId != "gw-0" {
		t.Fatalf("first connection on %s", a.ServerId)
	}
	p := c.publisher()

	const n = 60
	published := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := p.Push(context.Background(), push.Message{Target: push.User("alice"), Payload: []byte(strconv.Itoa(i))}); err != nil {
				published <- err
				return
			}
			time.Sleep(10 * time.Millisecond) // a steady stream, not a synchronisation
		}
		published <- nil
	}()
	box.waitFor(t, 10)
	to.Store(c.gws[1].ClientAddr())
	if err := c.gws[0].Drain(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-acks:
		if a.ServerId != "gw-1" || a.Resume.GetStatus() != pb.ResumeResult_STATUS_COMPLETE {
			t.Fatalf("resumed on %s with %v", a.ServerId, a.Resume)
		}
	case <-time.After(wait):
		t.Fatal("the client did not resume")
	}
	got := box.waitFor(t, n)
	for i, p := range got {
		if string(p.Payload) != strconv.Itoa(i) {
			t.Fatalf("push %d carried %q: lost, duplicated or reordered (%d received)", i, p.Payload, len(got))
		}
	}
	if len(got) != n {
		t.Fatalf("%d pushes, want %d", len(got), n)
	}
}

// When the gap is older than the window, the resume says so instead of pretending.
func TestResumeBeyondTheWindowIsReportedNotRecovered(t *testing.T) {
	c := &cluster{t: t}
	c.mutate = func(cfg *config.Config) { cfg.Replay.MaxRecords = 3 }
	*c = *newClusterWith(t, 1, 1, c.mutate)
	c.waitReady()
	var to atomic.Value
	to.Store(c.gws[0].ClientAddr())
	box := &inbox{signal: make(chan struct{}, 1)}
	acks := make(chan *pb.HandshakeAck, 4)
	c.movingClient("bob", &to, box, acks)
	<-acks
	p := c.publisher()
	if _, err := p.Push(ctxT(t), push.Message{Target: push.User("bob"), Payload: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	box.waitFor(t, 1)

	// bob's connection breaks; 10 records for him pass while he is away (the window holds 3).
	to.Store("127.0.0.1:1") // reconnects fail for now
	var once sync.Once
	for _, s := range c.gws[0].Server().Sessions().All(nil) {
		once.Do(func() { s.Abort("test_cut") })
	}
	for i := range 10 {
		if _, err := p.Push(ctxT(t), push.Message{Target: push.User("bob"), Payload: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the pod to read them", func() bool {
		return metric(t, c.gws[0], "tcpgw_downlink_records_total", map[string]string{"result": "skipped"}) >= 10
	})
	to.Store(c.gws[0].ClientAddr())
	select {
	case a := <-acks:
		if a.Resume.GetStatus() != pb.ResumeResult_STATUS_NOT_RECOVERED || len(a.Resume.NotRecovered) != 1 {
			t.Fatalf("resume result %v, want NOT_RECOVERED for partition 0", a.Resume)
		}
	case <-time.After(wait):
		t.Fatal("no resume")
	}
	// What the window still holds is replayed.
	got := box.waitFor(t, 4)
	if string(got[1].Payload) != "7" || string(got[3].Payload) != "9" {
		t.Errorf("replayed %q..%q, want the window's last 3 records 7..9", got[1].Payload, got[3].Payload)
	}
}

// An app killed after it stored its exported state starts again with it: the new client
// resumes the same session, COMPLETE, and gets exactly what was published while it was dead,
// once each and in order, though one of the two partitions had never held a record (its -1
// floor is in the state).
func TestAppRestartResumesFromExportedState(t *testing.T) {
	c := newCluster(t, 1, 2)
	c.waitReady()
	before, box := c.connect(0, "carol", nil, nil)
	p := c.publisher()
	if _, err := p.Push(ctxT(t), push.Message{Target: push.User("carol"), Payload: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	box.waitFor(t, 1)
	exported := before.ResumeState()
	if len(exported.Positions) != 2 {
		t.Fatalf("exported %+v, want a position for each of 2 partitions", exported)
	}
	stored, err := exported.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	_ = before.Close()

	const missed = 5
	for i := range missed {
		if _, err := p.Push(ctxT(t), push.Message{Target: push.User("carol"), Payload: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	var state client.ResumeState
	if err := state.UnmarshalText(stored); err != nil {
		t.Fatal(err)
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "carol", "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()}).SignedString(c.secret)
	if err != nil {
		t.Fatal(err)
	}
	after := &inbox{signal: make(chan struct{}, 1)}
	acks := make(chan *pb.HandshakeAck, 1)
	cl, err := client.Connect(ctxT(t), client.Options{Addr: c.gws[0].ClientAddr(), Token: token, NoReconnect: true,
		Resume: &state, OnPush: after.add, OnConnect: func(a *pb.HandshakeAck) { acks <- a }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	if a := <-acks; a.SessionId != exported.SessionID || a.Resume.GetStatus() != pb.ResumeResult_STATUS_COMPLETE {
		t.Fatalf("restarted as session %s with %v, want %s COMPLETE", a.SessionId, a.Resume, exported.SessionID)
	}
	after.waitFor(t, missed)
	if _, err := cl.Ping(ctxT(t)); err != nil { // anything replayed is queued before the PONG
		t.Fatal(err)
	}
	got := after.snapshot()
	for i, p := range got {
		if string(p.Payload) != strconv.Itoa(i) {
			t.Fatalf("push %d after the restart carried %q: lost, duplicated or reordered (%d received)", i, p.Payload, len(got))
		}
	}
	if len(got) != missed {
		t.Fatalf("%d pushes after the restart, want %d", len(got), missed)
	}
}
