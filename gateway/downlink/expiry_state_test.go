package downlink

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

const (
	testMargin  = 30 * time.Second
	testRewrite = 10 * time.Second
)

var t0 = time.Unix(1_000_000, 0)

func ms(d time.Duration) int64 { return t0.Add(d).UnixMilli() }

func delivered(msg, session string, expires time.Duration) *pb.Receipt {
	return &pb.Receipt{
		MessageId: msg, SessionId: session, UserId: "u-" + session, CorrelationId: "c-" + msg,
		Kind: pb.Receipt_KIND_DELIVERED, ServerId: "gw-a", ExpiresAtMs: ms(expires),
		Position: &pb.Position{Partition: 2, Offset: 40},
	}
}

func answer(kind pb.Receipt_Kind, msg, session string) *pb.Receipt {
	return &pb.Receipt{MessageId: msg, SessionId: session, UserId: "u-" + session, Kind: kind, ServerId: "gw-b"}
}

func newTestState(next int64, max int) *expiryState {
	return newExpiryState(next, "gw-owner", testMargin, testRewrite, &entryBudget{max: int64(max)})
}

// log is a partition's records for the tests: apply them in order from an offset.
type logRecord struct {
	rc *pb.Receipt
	at time.Duration
}

func applyLog(s *expiryState, log []logRecord, from int64) {
	for off := from; off < int64(len(log)); off++ {
		s.apply(log[off].rc, off, t0.Add(log[off].at))
	}
}

func keys(rcs []*pb.Receipt) []string {
	var out []string
	for _, rc := range rcs {
		out = append(out, rc.MessageId+"/"+rc.SessionId)
	}
	return out
}

func TestExpiryStateExpiresAnUnansweredDeliveryOnce(t *testing.T) {
	s := newTestState(0, 100)
	s.apply(delivered("m1", "s1", 5*time.Second), 0, t0)
	if s.open() != 1 || s.held() != 1 || s.commitOffset() != 0 {
		t.Fatalf("open %d held %d commit %d, want 1 1 0", s.open(), s.held(), s.commitOffset())
	}
	if got := s.expire(t0.Add(4999 * time.Millisecond)); len(got) != 0 {
		t.Fatalf("expired before its expiry: %v", got)
	}
	got := s.expire(t0.Add(5 * time.Second))
	if len(got) != 1 {
		t.Fatalf("%d EXPIRED at the expiry, want 1", len(got))
	}
	want := &pb.Receipt{
		MessageId: "m1", SessionId: "s1", UserId: "u-s1", CorrelationId: "c-m1", Kind: pb.Receipt_KIND_EXPIRED,
		ServerId: "gw-owner", AtMs: ms(5 * time.Second), ExpiresAtMs: ms(5 * time.Second),
		Position: &pb.Position{Partition: 2, Offset: 40},
	}
	if got[0].String() != want.String() {
		t.Errorf("EXPIRED = %v\nwant %v", got[0], want)
	}
	// Written, not read back yet: not written again, and the commit stays on the DELIVERED.
	if again := s.expire(t0.Add(5*time.Second + testRewrite - time.Millisecond)); len(again) != 0 {
		t.Errorf("written again before rewrite: %v", again)
	}
	if s.commitOffset() != 0 || s.open() != 1 {
		t.Errorf("commit %d open %d while the EXPIRED is in flight, want 0 1", s.commitOffset(), s.open())
	}
	// Read back: a tombstone, which no longer holds anything open.
	s.apply(got[0], 1, t0.Add(5*time.Second))
	if s.open() != 0 || s.held() != 1 {
		t.Errorf("open %d held %d after the EXPIRED was read back, want 0 1", s.open(), s.held())
	}
	if again := s.expire(t0.Add(time.Minute)); len(again) != 0 {
		t.Errorf("expired twice: %v", again)
	}
}

func TestExpiryStateWritesAgainWhatIsNotReadBack(t *testing.T) {
	s := newTestState(0, 100)
	s.apply(delivered("m1", "s1", time.Second), 0, t0)
	if n := len(s.expire(t0.Add(time.Second))); n != 1 {
		t.Fatalf("%d EXPIRED, want 1", n)
	}
	if n := len(s.expire(t0.Add(time.Second + testRewrite))); n != 1 {
		t.Errorf("%d EXPIRED after rewrite without a read back, want 1", n)
	}
	// A failed write reopens the entry at once.
	s.writeFailed(ackKey{"m1", "u-s1", "s1"})
	if n := len(s.expire(t0.Add(time.Second + testRewrite))); n != 1 {
		t.Errorf("%d EXPIRED after a failed write, want 1", n)
	}
}

func TestExpiryStateAnswersResolve(t *testing.T) {
	for _, kind := range []pb.Receipt_Kind{pb.Receipt_KIND_ACKED, pb.Receipt_KIND_REPLIED, pb.Receipt_KIND_EXPIRED} {
		t.Run(kind.String(), func(t *testing.T) {
			s := newTestState(0, 100)
			s.apply(delivered("m1", "s1", 5*time.Second), 0, t0)
			s.apply(delivered("m1", "s2", 5*time.Second), 1, t0)
			s.apply(answer(kind, "m1", "s1"), 2, t0.Add(time.Second))
			// A duplicate DELIVERED (a replay after a resume) does not reopen it.
			s.apply(delivered("m1", "s1", 5*time.Second), 3, t0.Add(2*time.Second))
			if got := keys(s.expire(t0.Add(6 * time.Second))); !slices.Equal(got, []string{"m1/s2"}) {
				t.Errorf("expired %v, want only m1/s2 (m1/s1 was answered)", got)
			}
		})
	}
}

func TestExpiryStateAnswerBeforeDelivered(t *testing.T) {
	s := newTestState(0, 100)
	// The session moved: the new pod's ACKED reached the log before the old pod's DELIVERED.
	s.apply(answer(pb.Receipt_KIND_ACKED, "m1", "s1"), 0, t0)
	s.apply(delivered("m1", "s1", 50*time.Second), 1, t0.Add(time.Second))
	if s.open() != 0 {
		t.Fatalf("open %d: the DELIVERED after its ACKED reopened it", s.open())
	}
	if got := s.expire(t0.Add(51 * time.Second)); len(got) != 0 {
		t.Errorf("expired %v", keys(got))
	}
	// The tombstone learnt the expiry from the DELIVERED: kept until expiry + margin, not
	// just margin after the ACKED.
	if s.held() != 1 {
		t.Errorf("held %d at %v, want the tombstone", s.held(), 51*time.Second)
	}
	s.expire(t0.Add(50*time.Second + testMargin))
	if s.held() != 0 {
		t.Errorf("held %d after expiry + margin, want 0", s.held())
	}
}

func TestExpiryStateIgnores(t *testing.T) {
	s := newTestState(7, 100)
	never := delivered("m1", "s1", 0)
	never.ExpiresAtMs = 0
	noSession := delivered("m2", "", time.Second)
	s.apply(never, 7, t0)
	s.apply(noSession, 8, t0)
	s.apply(nil, 9, t0) // not a receipt
	if s.held() != 0 || s.commitOffset() != 10 {
		t.Errorf("held %d commit %d, want 0 10", s.held(), s.commitOffset())
	}
}

func TestExpiryStateExpiresInExpiryOrder(t *testing.T) {
	s := newTestState(0, 100)
	for i, sec := range []int{5, 1, 3, 2, 4} {
		s.apply(delivered(fmt.Sprintf("m%d", sec), "s", time.Duration(sec)*time.Second), int64(i), t0)
	}
	if got := keys(s.expire(t0.Add(3 * time.Second))); !slices.Equal(got, []string{"m1/s", "m2/s", "m3/s"}) {
		t.Errorf("at 3s expired %v", got)
	}
	if due, ok := s.nextDue(); !ok || !due.Equal(t0.Add(4*time.Second)) {
		t.Errorf("next due %v %v, want 4s", due.Sub(t0), ok)
	}
	if got := keys(s.expire(t0.Add(10 * time.Second))); !slices.Equal(got, []string{"m4/s", "m5/s"}) {
		t.Errorf("at 10s expired %v", got)
	}
}

// The commit offset is the oldest record still needed, so that a new owner reading from it
// rebuilds the same state.
func TestExpiryStateCommitOffset(t *testing.T) {
	s := newTestState(100, 100)
	steps := []struct {
		rc   *pb.Receipt
		at   time.Duration
		want int64
	}{
		{answer(pb.Receipt_KIND_ACKED, "x", "s"), 0, 100},       // an answer with nothing open: held (it may precede its DELIVERED)
		{delivered("a", "s", 10*time.Second), 0, 100},           // 101
		{delivered("b", "s", 20*time.Second), 0, 100},           // 102
		{answer(pb.Receipt_KIND_ACKED, "a", "s"), 1, 100},       // a resolved: tombstone until 40s
		{answer(pb.Receipt_KIND_ACKED, "b", "s"), 2, 100},       // b resolved: tombstone until 50s
		{&pb.Receipt{Kind: pb.Receipt_KIND_DELIVERED}, 31, 101}, // log time 31s: x's tombstone (0s + 30s) forgotten
		{nil, 41, 102}, // 40s: a forgotten
		{nil, 51, 108}, // 50s: b forgotten; nothing held: the next record
	}
	for i, st := range steps {
		off := 100 + int64(i)
		s.apply(st.rc, off, t0.Add(st.at*time.Second))
		if got := s.commitOffset(); got != st.want {
			t.Errorf("after offset %d: commit %d, want %d", off, got, st.want)
		}
	}
}

func TestExpiryStateBudget(t *testing.T) {
	b := &entryBudget{max: 3}
	s1 := newExpiryState(0, "gw", testMargin, testRewrite, b)
	s2 := newExpiryState(0, "gw", testMargin, testRewrite, b)
	s1.apply(delivered("m1", "s", time.Second), 0, t0)
	s1.apply(delivered("m2", "s", time.Second), 1, t0)
	s2.apply(delivered("m3", "s", time.Second), 0, t0)
	if d := s2.apply(delivered("m4", "s", time.Second), 1, t0); d != droppedDelivered {
		t.Errorf("fourth DELIVERED over a budget of 3: dropped %q, want %q", d, droppedDelivered)
	}
	if d := s2.apply(answer(pb.Receipt_KIND_ACKED, "m9", "s"), 2, t0); d != droppedAnswer {
		t.Errorf("answer over budget: dropped %q, want %q", d, droppedAnswer)
	}
	// Resolving an entry takes no more budget.
	if d := s1.apply(answer(pb.Receipt_KIND_ACKED, "m1", "s"), 2, t0); d != "" {
		t.Errorf("resolving dropped %q", d)
	}
	// A revoked partition gives its share back.
	s1.release()
	if d := s2.apply(delivered("m5", "s", time.Second), 3, t0); d != "" {
		t.Errorf("after release: dropped %q", d)
	}
	if b.n.Load() != 2 {
		t.Errorf("budget in use %d, want 2", b.n.Load())
	}
}

// Whatever the log and wherever the old owner stopped, a new owner starting at the old
// owner's commit offset expires the same deliveries as a reader of the whole log. The logs
// include what is rare in practice: duplicate DELIVERED after answers, answers before their
// DELIVERED. Answers carry the expiry, as the gateway writes them while it holds the push.
// (Without it, a tombstone lives margin after its last answer: a duplicate DELIVERED later
// than that may reopen it, TestExpiryStateAnswerBeforeDelivered has the rule.)
func TestExpiryStateNewOwnerRebuildsTheOpenSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 300 {
		var log []logRecord
		at := time.Duration(0)
		for range 60 {
			at += time.Duration(rng.IntN(3000)) * time.Millisecond
			msg, session := fmt.Sprintf("m%d", rng.IntN(12)), fmt.Sprintf("s%d", rng.IntN(2))
			// Expiries derive from the message: all receipts of one message agree.
			var n int
			_, _ = fmt.Sscanf(msg, "m%d", &n)
			expires := time.Duration(20+5*n) * time.Second
			var rc *pb.Receipt
			switch rng.IntN(4) {
			case 0, 1:
				rc = delivered(msg, session, expires)
			case 2:
				rc = answer(pb.Receipt_KIND_ACKED, msg, session)
				rc.ExpiresAtMs = ms(expires) // the gateway that wrote it still held the push
			case 3:
				rc = answer(pb.Receipt_KIND_REPLIED, msg, session)
				rc.ExpiresAtMs = ms(expires)
			}
			log = append(log, logRecord{rc, at})
		}
		cut := rng.IntN(len(log) + 1)
		old := newTestState(0, 1000)
		applyLog(old, log[:cut], 0)
		from := old.commitOffset()

		whole := newTestState(0, 1000)
		applyLog(whole, log, 0)
		heir := newTestState(from, 1000)
		applyLog(heir, log, from)

		now := t0.Add(at)
		for _, step := range []time.Duration{0, 10 * time.Second, time.Minute, 5 * time.Minute} {
			w, h := keys(whole.expire(now.Add(step))), keys(heir.expire(now.Add(step)))
			slices.Sort(w)
			slices.Sort(h)
			if !slices.Equal(w, h) {
				t.Fatalf("run %d, cut %d, commit %d, at +%v: one reader of the whole log expires %v, the new owner %v", run, cut, from, step, w, h)
			}
		}
	}
}

// A replay of an answered push (a DELIVERED after the ACKED) keeps the tombstone, and the
// commit on its first record, until no older entry is left: a new owner starting between the
// ACKED and that DELIVERED would take the push for unanswered.
func TestExpiryStateLateDuplicateHoldsTheCommit(t *testing.T) {
	s := newTestState(0, 100)
	s.apply(delivered("a", "s", 10*time.Second), 0, t0)
	s.apply(answer(pb.Receipt_KIND_ACKED, "a", "s"), 1, t0.Add(time.Second))
	s.apply(delivered("b", "s", 100*time.Second), 2, t0.Add(2*time.Second))
	s.apply(delivered("a", "s", 10*time.Second), 3, t0.Add(3*time.Second)) // the replay
	s.apply(nil, 4, t0.Add(41*time.Second))                                // a's expiry + margin
	if s.held() != 2 || s.commitOffset() != 0 {
		t.Fatalf("held %d commit %d past a's expiry + margin, want 2 0 (b sits between a's ACKED and its replay)", s.held(), s.commitOffset())
	}
	s.apply(answer(pb.Receipt_KIND_ACKED, "b", "s"), 5, t0.Add(42*time.Second))
	s.apply(nil, 6, t0.Add(131*time.Second)) // past b's too, and a's second look
	if s.held() != 0 || s.commitOffset() != 7 {
		t.Errorf("held %d commit %d once b is gone, want 0 7", s.held(), s.commitOffset())
	}
}
