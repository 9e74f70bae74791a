package push

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

func ev(kind pb.SessionEvent_Kind, server string, epoch int64, seq uint64, conn, user, session string) *pb.SessionEvent {
	return &pb.SessionEvent{Kind: kind, ServerId: server, Epoch: epoch, Seq: seq, ConnectionId: conn, UserId: user, SessionId: session}
}

const (
	connected    = pb.SessionEvent_KIND_CONNECTED
	disconnected = pb.SessionEvent_KIND_DISCONNECTED
	replaced     = pb.SessionEvent_KIND_REPLACED
	resumed      = pb.SessionEvent_KIND_RESUMED
)

func where(p *Presence, user string) string {
	var parts []string
	for _, o := range p.User(user) {
		parts = append(parts, o.SessionID+"@"+o.ConnectionID)
	}
	return strings.Join(parts, ",")
}

func TestPresenceFolds(t *testing.T) {
	tests := []struct {
		name   string
		events []*pb.SessionEvent
		want   string
	}{
		{"connected", []*pb.SessionEvent{ev(connected, "a", 1, 1, "a1", "u", "s")}, "s@a1"},
		{"disconnected", []*pb.SessionEvent{ev(connected, "a", 1, 1, "a1", "u", "s"), ev(disconnected, "a", 1, 2, "a1", "u", "s")}, ""},
		{"two sessions", []*pb.SessionEvent{ev(connected, "a", 1, 1, "a1", "u", "s"), ev(connected, "b", 1, 1, "b1", "u", "t")}, "s@a1,t@b1"},
		{"replaced then old disconnect keeps the new", []*pb.SessionEvent{
			ev(connected, "a", 1, 1, "a1", "u", "s"), ev(replaced, "a", 1, 2, "a1", "u", "s"),
			ev(connected, "a", 1, 3, "a2", "u", "s"), ev(disconnected, "a", 1, 4, "a1", "u", "s"),
		}, "s@a2"},
		{"resumed elsewhere before the drained pod's disconnect", []*pb.SessionEvent{
			ev(connected, "a", 1, 1, "a1", "u", "s"), ev(resumed, "b", 1, 1, "b1", "u", "s"), ev(disconnected, "a", 1, 2, "a1", "u", "s"),
		}, "s@b1"},
		{"resumed elsewhere after the drained pod's disconnect", []*pb.SessionEvent{
			ev(connected, "a", 1, 1, "a1", "u", "s"), ev(disconnected, "a", 1, 2, "a1", "u", "s"), ev(resumed, "b", 1, 1, "b1", "u", "s"),
		}, "s@b1"},
		{"a restarted pod's earlier sessions are gone", []*pb.SessionEvent{
			ev(connected, "a", 1, 1, "a1", "u", "s"), ev(connected, "a", 1, 2, "a2", "u", "t"), ev(connected, "a", 2, 1, "a3", "v", "x"),
		}, ""},
		{"an event of an earlier process changes nothing", []*pb.SessionEvent{
			ev(connected, "a", 2, 1, "a3", "u", "s"), ev(connected, "a", 1, 9, "a1", "u", "t"),
		}, "s@a3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPresence()
			for _, e := range tt.events {
				if err := p.Apply(e); err != nil {
					t.Fatal(err)
				}
			}
			if got := where(p, "u"); got != tt.want {
				t.Fatalf("user u online %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPresenceMissing(t *testing.T) {
	p := NewPresence()
	for _, seq := range []uint64{1, 2, 5} { // 3 and 4 were dropped by the gateway
		_ = p.Apply(ev(connected, "a", 1, seq, "c"+string(rune('0'+seq)), "u", "s"))
	}
	_ = p.Apply(ev(connected, "b", 1, 1, "b1", "v", "s"))
	if got := p.Stats().Missing; got != 2 {
		t.Fatalf("missing %d, want 2", got)
	}
}

// TestPresenceSkipsHostileRecords feeds what anyone able to write the events topic could:
// garbage, other messages, events without ids or with unknown kinds or huge ids. Each is
// skipped with its typed reason and leaves the view as it was.
func TestPresenceSkipsHostileRecords(t *testing.T) {
	p := NewPresence()
	_ = p.Apply(ev(connected, "a", 1, 1, "a1", "u", "s"))
	receipt, _ := proto.Marshal(&pb.Receipt{MessageId: "m", Kind: pb.Receipt_KIND_ACKED})
	valid := func(mut func(*pb.SessionEvent)) []byte {
		e := ev(disconnected, "a", 1, 2, "a1", "u", "s")
		mut(e)
		b, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	records := []struct {
		value []byte
		want  error
	}{
		{[]byte{0xff, 0xff, 0xff, 0xff}, ErrUndecodable},
		{[]byte{0x0a, 0x80}, ErrUndecodable}, // a length running past the end
		{receipt, ErrInvalidEvent},           // decodes (unknown fields), names no session
		{nil, ErrInvalidEvent},
		{valid(func(e *pb.SessionEvent) { e.Kind = 99 }), ErrInvalidEvent},
		{valid(func(e *pb.SessionEvent) { e.UserId = "" }), ErrInvalidEvent},
		{valid(func(e *pb.SessionEvent) { e.ConnectionId = "" }), ErrInvalidEvent},
		{valid(func(e *pb.SessionEvent) { e.SessionId = strings.Repeat("x", 1<<16) }), ErrInvalidEvent},
		{valid(func(e *pb.SessionEvent) { e.RemoteAddress = strings.Repeat("x", 1<<16) }), ErrInvalidEvent},
	}
	for i, r := range records {
		if err := p.ApplyRecord(r.value); !errors.Is(err, r.want) {
			t.Errorf("record %d: %v, want %v", i, err, r.want)
		}
	}
	if got := where(p, "u"); got != "s@a1" {
		t.Fatalf("hostile records changed the view: %q", got)
	}
	st := p.Stats()
	if st.Applied != 1 || st.Skipped[SkipUndecodable] != 2 || st.Skipped[SkipInvalid] != 7 {
		t.Fatalf("stats %+v, want 1 applied, 2 undecodable, 7 invalid", st)
	}
}
