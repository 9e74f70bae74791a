package session

import (
	"fmt"
	"slices"
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

// All lists every registered session once, in registration order, a session that left
// replaced by the last one; replacing and unregistering keep each session's place right.
func TestAllListsSessionsInRegistrationOrderAfterRemovals(t *testing.T) {
	m := NewManager()
	var ss []*Session
	for i := range 6 {
		s := mk(fmt.Sprintf("s%d", i), fmt.Sprintf("u%d", i))
		m.Register(s)
		ss = append(ss, s)
	}
	if got := m.All(nil); !slices.Equal(got, ss) {
		t.Fatalf("All = %v, want registration order %v", ids(got), ids(ss))
	}
	m.Unregister(ss[1])   // the last (s5) takes its place
	neu := mk("s3", "u3") // replaces s3: removed, the new one appended
	if r := m.Register(neu); r != ss[3] {
		t.Fatalf("Register replaced %v, want s3", r)
	}
	m.Unregister(ss[3]) // the replaced one leaving removes nothing
	m.Unregister(ss[5]) // from the middle now
	want := []*Session{ss[0], neu, ss[2], ss[4]}
	if got := m.All(nil); !slices.Equal(got, want) {
		t.Fatalf("All = %v, want %v", ids(got), ids(want))
	}
	for _, s := range want {
		m.Unregister(s)
	}
	if got := m.All(nil); len(got) != 0 || m.Len() != 0 {
		t.Fatalf("All = %v, Len %d after every session left", ids(got), m.Len())
	}
}

// The slice gives its array back once most sessions left.
func TestAllShrinksWhenMostSessionsLeft(t *testing.T) {
	m := NewManager()
	const n = 4 * allShrinkMin
	var ss []*Session
	for i := range n {
		s := mk(fmt.Sprintf("s%d", i), "u")
		m.Register(s)
		ss = append(ss, s)
	}
	for _, s := range ss[:n-10] {
		m.Unregister(s)
	}
	if c := cap(m.all); c > n/2 {
		t.Fatalf("capacity %d for %d sessions after %d left", c, len(m.all), n-10)
	}
	if got := m.All(nil); !sameSet(got, ss[n-10:]) {
		t.Fatalf("All lost sessions: %d left, want 10", len(got))
	}
}

func sameSet(a, b []*Session) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[*Session]bool{}
	for _, s := range a {
		in[s] = true
	}
	for _, s := range b {
		if !in[s] {
			return false
		}
	}
	return true
}
