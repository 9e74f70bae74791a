package session

import (
	"strconv"
	"testing"
)

func TestAnswersAreOwedOnceAndExpire(t *testing.T) {
	s := mk("s1", "alice")
	s.ExpectAnswer(Answerable{MessageID: "both", Ack: true, Reply: true}, 8, 0)
	s.ExpectAnswer(Answerable{MessageID: "ack", Ack: true, ExpiresAtMs: 100}, 8, 0)
	steps := []struct {
		id    string
		reply bool
		now   int64
		want  Refusal
	}{
		{"nobody", false, 0, RefusedUnknown},
		{"ack", true, 0, RefusedNotAsked}, // asked for an ack only
		{"both", false, 0, ""},
		{"both", false, 0, RefusedNotAsked}, // acked already
		{"both", true, 0, ""},
		{"both", true, 0, RefusedNotAsked},
		{"ack", false, 100, RefusedExpired},
		{"ack", false, 0, RefusedUnknown}, // an expired push is forgotten
	}
	for i, st := range steps {
		a, got := s.TakeAnswer(st.id, st.reply, st.now)
		if got != st.want || (got == "" && a.MessageID != st.id) {
			t.Fatalf("step %d: TakeAnswer(%s, reply=%v) = %v, %q; want %q", i, st.id, st.reply, a, got, st.want)
		}
	}
}

func TestAnswerablePushesAreBounded(t *testing.T) {
	s := mk("s1", "alice")
	const max = 4
	forgotten := 0
	for i := range 10 {
		if s.ExpectAnswer(Answerable{MessageID: strconv.Itoa(i), Ack: true}, max, 0) {
			forgotten++
		}
	}
	if forgotten != 10-max || len(s.answers.pending) != max {
		t.Fatalf("forgot %d, holds %d; want %d and %d", forgotten, len(s.answers.pending), 10-max, max)
	}
	if _, r := s.TakeAnswer("5", false, 0); r != RefusedUnknown {
		t.Fatalf("the oldest beyond the bound is still answerable (%q)", r)
	}
	if _, r := s.TakeAnswer("6", false, 0); r != "" {
		t.Fatalf("a held push refused: %q", r)
	}
	// Expired entries make room before anything is forgotten.
	s2 := mk("s2", "alice")
	s2.ExpectAnswer(Answerable{MessageID: "old", Ack: true, ExpiresAtMs: 10}, 1, 0)
	if s2.ExpectAnswer(Answerable{MessageID: "new", Ack: true}, 1, 20) {
		t.Fatal("an expired entry counted against the bound")
	}
	// A record seen again (duplicate or replay) replaces its entry instead of adding one.
	if s2.ExpectAnswer(Answerable{MessageID: "new", Ack: true, Offset: 7}, 1, 20) || len(s2.answers.pending) != 1 {
		t.Fatal("the same message id took two entries")
	}
}
