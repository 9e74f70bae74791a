package hostile

import (
	"context"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Finding 1: the client chose session_id and a second connection with the same id from any
// user replaced the first: the victim got GOAWAY REPLACED (its SDK stops for good), and the
// attacker, resuming from positions of its choice, received the victim's pushes and replay
// window. Session ids are now scoped by user: the attacker's handshake with the victim's id
// opens a session of the attacker's own.
func TestSessionTakeoverByAnotherUser(t *testing.T) {
	g := Start(t, Options{Kafka: true})
	p := publisher(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	victim := g.Dial()
	vack := victim.Handshake(g.Token("alice"), func(hs *pb.Handshake) { hs.SessionId = "s-victim" })
	// Pushes for alice's session and for alice, before the attacker comes: they sit in every
	// pod's replay window.
	for _, m := range []push.Message{
		{ID: "to-session", Target: push.Session("alice", "s-victim"), Payload: []byte("secret 1")},
		{ID: "to-user", Target: push.User("alice"), Payload: []byte("secret 2")},
	} {
		if _, err := p.Push(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	victim.expectPush("to-session")
	victim.expectPush("to-user")

	// The attacker names alice's session id and asks for everything since the start of every
	// partition.
	attacker := g.Dial()
	var from []*pb.Position
	for _, w := range vack.Positions {
		from = append(from, &pb.Position{Partition: w.Partition, Offset: -1})
	}
	aack := attacker.Handshake(g.Token("mallory"), func(hs *pb.Handshake) {
		hs.SessionId = "s-victim"
		hs.Resume = &pb.Resume{Positions: from}
	})
	if aack.UserId != "mallory" || aack.SessionId != "s-victim" {
		t.Fatalf("attacker's ack: %v", aack)
	}
	attacker.expectNothingQueued(1) // none of alice's records replayed
	victim.expectNothingQueued(2)   // no GOAWAY REPLACED

	// Later pushes to alice's session reach alice only.
	if _, err := p.Push(ctx, push.Message{ID: "later", Target: push.Session("alice", "s-victim"), Payload: []byte("secret 3")}); err != nil {
		t.Fatal(err)
	}
	victim.expectPush("later")
	attacker.expectNothingQueued(3)
	if got := g.Metric("tcpgw_closes_total", "reason", "replaced"); got != 0 {
		t.Errorf("%v sessions replaced", got)
	}
}
