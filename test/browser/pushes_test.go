package browser

import (
	"slices"
	"testing"
)

func TestCompare(t *testing.T) {
	want := []string{"a", "b", "c"}
	for _, c := range []struct {
		name                        string
		got                         []string
		ok                          bool
		first                       int
		missing, repeated, unwanted []string
	}{
		{name: "equal", got: []string{"a", "b", "c"}, ok: true, first: 3},
		{name: "lost", got: []string{"a", "c"}, first: 1, missing: []string{"b"}},
		{name: "duplicated", got: []string{"a", "b", "b", "c"}, first: 2, repeated: []string{"b"}},
		{name: "reordered", got: []string{"a", "c", "b"}, first: 1},
		{name: "unwanted", got: []string{"a", "b", "c", "x"}, first: 3, unwanted: []string{"x"}},
		{name: "nothing", got: nil, first: 0, missing: want},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Compare(c.got, want)
			if d.OK() != c.ok || d.First != c.first || !slices.Equal(d.Missing, c.missing) ||
				!slices.Equal(d.Repeated, c.repeated) || !slices.Equal(d.Unwanted, c.unwanted) {
				t.Fatalf("Compare(%v, %v) = %+v (OK %v)", c.got, want, d, d.OK())
			}
		})
	}
}
