package push

import (
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

func TestFromTarget(t *testing.T) {
	alice1 := &pb.Receipt{UserId: "alice", SessionId: "s-1"}
	alice2 := &pb.Receipt{UserId: "alice", SessionId: "s-2"}
	mallory1 := &pb.Receipt{UserId: "mallory", SessionId: "s-1"}
	tests := []struct {
		name   string
		target Target
		r      *pb.Receipt
		want   bool
	}{
		{"user: its session", User("alice"), alice2, true},
		{"user: another user", User("alice"), mallory1, false},
		{"session: itself", Session("alice", "s-1"), alice1, true},
		{"session: same id, another user", Session("alice", "s-1"), mallory1, false},
		{"session: same user, another session", Session("alice", "s-1"), alice2, false},
		{"group: anyone the gateways delivered to", Group("vip"), mallory1, true},
		{"all: anyone the gateways delivered to", All(), mallory1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromTarget(tt.target, tt.r); got != tt.want {
				t.Fatalf("FromTarget = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSessionTargetsAreKeyedByUser(t *testing.T) {
	msg, _, err := Record(Message{Target: Session("alice", "s-1")}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Key) != "alice" {
		t.Fatalf("key %q, want the user id: one user's records share a partition", msg.Key)
	}
}
