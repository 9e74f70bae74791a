package session

import (
	"testing"
	"time"
)

func mk(id, user string, groups ...string) *Session {
	s := New(newPipe(false), "127.0.0.1:1", &Limits{QueueFrames: 1, QueueBytes: 1}, nil, time.Now())
	s.Identity = Identity{SessionID: id, UserID: user, Groups: groups}
	return s
}

func TestReplacedSessionNeverUnregistersItsReplacement(t *testing.T) {
	m := NewManager()
	old := mk("s1", "alice", "vip")
	if r := m.Register(old); r != nil {
		t.Fatalf("first register replaced %v", r)
	}
	neu := mk("s1", "alice", "vip")
	if r := m.Register(neu); r != old {
		t.Fatalf("Register returned %v, want the old session", r)
	}
	// The old connection closes later: that must not remove the new one.
	if m.Unregister(old) {
		t.Fatal("Unregister(old) removed something")
	}
	if got, ok := m.Get(Key{UserID: "alice", SessionID: "s1"}); !ok || got != neu {
		t.Fatalf("Get(s1) = %v, %v; want the new session", got, ok)
	}
	if got := m.User(nil, "alice"); len(got) != 1 || got[0] != neu {
		t.Fatalf("User(alice) = %v", got)
	}
	if got := m.Group(nil, "vip"); len(got) != 1 || got[0] != neu {
		t.Fatalf("Group(vip) = %v", got)
	}
	if !m.Unregister(neu) || m.Len() != 0 || m.HasUser("alice") || len(m.Group(nil, "vip")) != 0 {
		t.Fatal("indexes not empty after the last unregister")
	}
}

func TestIndexes(t *testing.T) {
	m := NewManager()
	a1, a2, b := mk("a1", "alice", "g1", "g2"), mk("a2", "alice"), mk("b1", "bob", "g2")
	for _, s := range []*Session{a1, a2, b} {
		m.Register(s)
	}
	tests := []struct {
		name string
		got  []*Session
		want int
	}{
		{"user alice", m.User(nil, "alice"), 2},
		{"user bob", m.User(nil, "bob"), 1},
		{"user nobody", m.User(nil, "nobody"), 0},
		{"group g1", m.Group(nil, "g1"), 1},
		{"group g2", m.Group(nil, "g2"), 2},
		{"all", m.All(nil), 3},
	}
	for _, tt := range tests {
		if len(tt.got) != tt.want {
			t.Errorf("%s: %d sessions, want %d", tt.name, len(tt.got), tt.want)
		}
	}
}
