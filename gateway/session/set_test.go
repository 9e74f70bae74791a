package session

import (
	"slices"
	"strings"
	"testing"
)

// TestSet walks a set through one, two, three sessions and back, checking its contents and
// that a map exists only while it holds two or more.
func TestSet(t *testing.T) {
	a, b, c := mk("a", "u"), mk("b", "u"), mk("c", "u")
	steps := []struct {
		name    string
		op      func(set) set
		want    []*Session
		wantMap bool
	}{
		{"add a", func(x set) set { return x.with(a) }, []*Session{a}, false},
		{"add a again", func(x set) set { return x.with(a) }, []*Session{a}, false},
		{"remove absent b", func(x set) set { return x.without(b) }, []*Session{a}, false},
		{"add b", func(x set) set { return x.with(b) }, []*Session{a, b}, true},
		{"add c", func(x set) set { return x.with(c) }, []*Session{a, b, c}, true},
		{"add c again", func(x set) set { return x.with(c) }, []*Session{a, b, c}, true},
		{"remove a", func(x set) set { return x.without(a) }, []*Session{b, c}, true},
		{"remove absent a", func(x set) set { return x.without(a) }, []*Session{b, c}, true},
		{"remove b: back inline", func(x set) set { return x.without(b) }, []*Session{c}, false},
		{"remove c", func(x set) set { return x.without(c) }, nil, false},
		{"remove from empty", func(x set) set { return x.without(c) }, nil, false},
	}
	var x set
	for _, st := range steps {
		x = st.op(x)
		got := x.appendTo(nil)
		byID := func(p, q *Session) int { return strings.Compare(p.SessionID, q.SessionID) }
		slices.SortFunc(got, byID)
		if !slices.Equal(got, st.want) || x.len() != len(st.want) {
			t.Fatalf("%s: holds %v (len %d), want %v", st.name, ids(got), x.len(), ids(st.want))
		}
		if (x.more != nil) != st.wantMap {
			t.Fatalf("%s: map present = %v, want %v", st.name, x.more != nil, st.wantMap)
		}
	}
}

// TestIndexEntryDropped checks that an index forgets a key whose last session left.
func TestIndexEntryDropped(t *testing.T) {
	index := map[string]set{}
	a, b := mk("a", "u"), mk("b", "u")
	add(index, "u", a)
	add(index, "u", b)
	remove(index, "u", a)
	remove(index, "nobody", a)
	if got := index["u"].appendTo(nil); len(got) != 1 || got[0] != b {
		t.Fatalf("index[u] = %v, want [b]", ids(got))
	}
	remove(index, "u", b)
	if _, ok := index["u"]; ok || len(index) != 0 {
		t.Fatalf("index not empty: %v", index)
	}
}

func ids(ss []*Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.SessionID
	}
	return out
}
