package downlink_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/client"
	"github.com/tcpgateway/tcpgateway/gateway/protocol/pb"
	"github.com/tcpgateway/tcpgateway/gateway/push"
)

// A push that asked for an ack and was delivered to a client that never answers — because it
// ignores it, or because it went away and never came back — ends in an EXPIRED receipt, so
// the publisher learns it will not be answered instead of waiting out its own timeout.
func TestUnansweredPushesExpire(t *testing.T) {
	c := newCluster(t, 1, 1)
	c.waitReady()
	c.connect(0, "mute", nil, nil)
	gone, goneBox := c.connect(0, "gone", nil, nil)
	c.connect(0, "polite", nil, func(cl *client.Client, p *pb.Push) { _ = cl.Ack(context.Background(), p) })
	p := c.publisher()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := p.PushAndWaitAck(ctx, push.Message{Target: push.User("mute"), Payload: []byte("x"), TTL: time.Second}); !errors.Is(err, push.ErrExpired) {
		t.Fatalf("unanswered push: %v, want ErrExpired", err)
	}

	result := make(chan error, 1)
	go func() {
		_, err := p.PushAndWaitAck(ctx, push.Message{Target: push.User("gone"), Payload: []byte("y"), TTL: 2 * time.Second})
		result <- err
	}()
	goneBox.waitFor(t, 1)
	_ = gone.Close() // and never reconnects
	if err := <-result; !errors.Is(err, push.ErrExpired) {
		t.Fatalf("push to a client that left: %v, want ErrExpired", err)
	}

	r, err := p.PushAndWaitAck(ctx, push.Message{Target: push.User("polite"), Payload: []byte("z"), TTL: time.Second})
	if err != nil || r.Kind != pb.Receipt_KIND_ACKED {
		t.Fatalf("acked push: %v %v", r, err)
	}
	// A later push expiring proves the expiry pass has run past the acked push's expiry:
	// the ack cleared it, so it did not expire.
	if _, err := p.PushAndWaitAck(ctx, push.Message{Target: push.User("mute"), Payload: []byte("marker"), TTL: 1500 * time.Millisecond}); !errors.Is(err, push.ErrExpired) {
		t.Fatalf("marker: %v", err)
	}
	eventually(t, "the receipts to be written", func() bool {
		return metric(t, c.gws[0], "tcpgw_receipts_total", map[string]string{"kind": "KIND_EXPIRED"}) >= 3
	})
	if n := metric(t, c.gws[0], "tcpgw_receipts_total", map[string]string{"kind": "KIND_EXPIRED"}); n != 3 {
		t.Errorf("%v EXPIRED receipts, want 3 (mute, gone, marker; the acked push must not expire)", n)
	}
	if n := metric(t, c.gws[0], "tcpgw_pending_acks", nil); n != 0 {
		t.Errorf("%v pending acks left", n)
	}
}
