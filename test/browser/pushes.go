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

// DiffIDs says how the ids a page saw differ from the ids it should have seen once each, in
// order: the first position that differs, the missing and the repeated ids ("" when equal).
func DiffIDs(got, want []string) string {
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	var missing, repeated []string
	for _, id := range want {
		switch n := seen[id]; {
		case n == 0:
			missing = append(missing, id)
		case n > 1:
			repeated = append(repeated, id)
		}
	}
	i := 0
	for i < min(len(got), len(want)) && got[i] == want[i] {
		i++
	}
	if i == len(got) && i == len(want) {
		return ""
	}
	return fmt.Sprintf("%d pushes seen, %d wanted once each in order: first difference at %d; missing %v; repeated %v", len(got), len(want), i, missing, repeated)
}
