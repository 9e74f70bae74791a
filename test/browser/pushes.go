package browser

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Bounds of the publisher's calls.
const (
	ackTimeout  = 30 * time.Second // PushAndWaitAck: Kafka, the gateway, the page's ack, the receipt
	pushTimeout = 10 * time.Second // one plain push stored by Kafka
)

// AckPush publishes a push to user that asks for an ack and waits for the receipt: the page
// acks it, and the receipt must say ACKED by the user's session.
func AckPush(t testing.TB, tab *Tab, pub *push.Publisher, user, session, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	r, err := pub.PushAndWaitAck(ctx, push.Message{ID: id, Target: push.User(user), Payload: []byte("ack me")})
	if err != nil {
		st, _ := tab.State()
		t.Fatalf("PushAndWaitAck %s: %v; the page's state: %+v", id, err, st)
	}
	if r.Kind != pb.Receipt_KIND_ACKED || r.UserId != user || r.SessionId != session {
		t.Fatalf("receipt of %s: %v, want ACKED by %s's session %s", id, r, user, session)
	}
}

// Stream publishes plain pushes to user, ids prefix000, prefix001, ..., one every every, each
// stored by Kafka before the next, until n are stored or stop is closed. It returns the ids
// stored, in order.
func Stream(pub *push.Publisher, user, prefix string, n int, every time.Duration, stop <-chan struct{}) ([]string, error) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s%03d", prefix, i)
		ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
		_, err := pub.Push(ctx, push.Message{ID: id, Target: push.User(user), Payload: fmt.Appendf(nil, "%d", i)})
		cancel()
		if err != nil {
			return ids, fmt.Errorf("push %s: %w", id, err)
		}
		ids = append(ids, id)
		select {
		case <-tick.C:
		case <-stop:
			return ids, nil
		}
	}
	return ids, nil
}

// Diff is how the ids a page saw differ from the ids it should have seen once each, in order.
type Diff struct {
	Got, Want int      // ids seen, ids wanted
	First     int      // the first position that differs (Got == Want == First when none)
	Missing   []string // wanted, never seen
	Repeated  []string // seen more than once
	Unwanted  []string // seen, never wanted
}

// Compare compares the ids a page saw with the ids it should have seen once each, in order.
func Compare(got, want []string) Diff {
	d := Diff{Got: len(got), Want: len(want)}
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	wanted := map[string]bool{}
	for _, id := range want {
		wanted[id] = true
		switch n := seen[id]; {
		case n == 0:
			d.Missing = append(d.Missing, id)
		case n > 1:
			d.Repeated = append(d.Repeated, id)
		}
	}
	for _, id := range got {
		if !wanted[id] {
			d.Unwanted = append(d.Unwanted, id)
		}
	}
	for d.First < min(len(got), len(want)) && got[d.First] == want[d.First] {
		d.First++
	}
	return d
}

// OK: every wanted id seen once, in order, and nothing else.
func (d Diff) OK() bool { return d.First == d.Got && d.First == d.Want }

func (d Diff) String() string {
	return fmt.Sprintf("%d pushes seen, %d wanted once each in order: first difference at %d; missing %v; repeated %v; not wanted %v",
		d.Got, d.Want, d.First, d.Missing, d.Repeated, d.Unwanted)
}
