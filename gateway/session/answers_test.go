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
	const max = 8
	forgotten := 0
	for i := range 20 {
		forgotten += s.ExpectAnswer(Answerable{MessageID: strconv.Itoa(i), Ack: true}, max, 0)
		if n := len(s.answers.pending); n > max {
			t.Fatalf("holds %d entries, bound %d", n, max)
		}
	}
	held := len(s.answers.pending)
	if forgotten+held != 20 {
		t.Fatalf("forgot %d, holds %d: %d pushes unaccounted for", forgotten, held, 20-forgotten-held)
	}
	// The newest are held, the oldest forgotten.
	if _, r := s.TakeAnswer("19", false, 0); r != "" {
		t.Fatalf("the newest push refused: %q", r)
	}
	if _, r := s.TakeAnswer("0", false, 0); r != RefusedUnknown {
		t.Fatalf("the oldest beyond the bound is still answerable (%q)", r)
	}

	// Expired and answered entries make room before an owed one is forgotten.
	s2 := mk("s2", "alice")
	s2.ExpectAnswer(Answerable{MessageID: "old", Ack: true, ExpiresAtMs: 10}, 2, 0)
	s2.ExpectAnswer(Answerable{MessageID: "done", Ack: true}, 2, 0)
	if _, r := s2.TakeAnswer("done", false, 0); r != "" {
		t.Fatal(r)
	}
	if n := s2.ExpectAnswer(Answerable{MessageID: "new", Ack: true}, 2, 20); n != 0 {
		t.Fatalf("forgot %d owed pushes while expired and answered ones could go", n)
	}
	if _, r := s2.TakeAnswer("new", false, 20); r != "" {
		t.Fatal(r)
	}
}

// BenchmarkAnswerablePush is what a push asking for an answer adds to its delivery
// (ExpectAnswer) and to its answer (TakeAnswer), with held answerable pushes already on the
// session (held = 0: the common case of a session answering as it goes).
func BenchmarkAnswerablePush(b *testing.B) {
	for _, held := range []int{0, 16, 127} {
		b.Run("held="+strconv.Itoa(held), func(b *testing.B) {
			s := mk("s1", "alice")
			for i := range held {
				s.ExpectAnswer(Answerable{MessageID: "old-" + strconv.Itoa(i), Reply: true}, 128, 0)
			}
			ids := make([]string, 1024)
			for i := range ids {
				ids[i] = "m-" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := ids[i%len(ids)]
				s.ExpectAnswer(Answerable{MessageID: id, Ack: true}, 128, 0)
				if _, r := s.TakeAnswer(id, false, 0); r != "" {
					b.Fatal(r)
				}
			}
		})
	}
}
