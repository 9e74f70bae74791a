package session

import "sync"

// Answerable is a push sent on this session that asked for an ack and/or a reply: the only
// pushes the session may answer. Strings are shared with the downlink record, not copied.
type Answerable struct {
	MessageID     string
	CorrelationID string
	Partition     int32
	Offset        int64
	// ExpiresAtMs: the push's expiry (0 = never); an answer after it is refused.
	ExpiresAtMs int64
	// Ack and Reply: the answers still owed.
	Ack, Reply bool
}

// Refusal names why an answer was refused: the same string in the metric label and the ERROR
// frame's message.
type Refusal string

const (
	// RefusedUnknown: no push with that message id was sent to this session's identity and
	// is still held (here or in the replay window), or it was forgotten as one of the oldest
	// of too many.
	RefusedUnknown Refusal = "unknown"
	// RefusedExpired: the push expired before the answer came.
	RefusedExpired Refusal = "expired"
	// RefusedNotAsked: the push did not ask for this kind of answer, or got it already.
	RefusedNotAsked Refusal = "not_asked"
)

// answers holds a session's Answerables, oldest first, at most a configured number: a client
// that never answers costs a bounded amount. The downlink consumer adds (on delivery and
// replay), the connection's reader takes; both under mu. Empty (nil slice) for sessions that
// were never sent such a push, so idle sessions pay only the struct.
type answers struct {
	mu      sync.Mutex
	pending []Answerable
	refused int // answers refused so far (abuse beyond a bound closes the session)
}

// ExpectAnswer records a push sent on the session that waits for an answer. It appends; a
// session holding max entries first compacts them: expired pushes and answered ones (whose
// second answer is then no longer refused) are dropped, then, if that is not enough, the oldest
// owed ones down to three quarters of max, reported as forgotten (their answer will be refused
// and their publisher gets EXPIRED). Compacting a quarter at a time keeps the cost per push
// constant on average.
func (s *Session) ExpectAnswer(a Answerable, max int, nowMs int64) (forgotten int) {
	s.answers.mu.Lock()
	defer s.answers.mu.Unlock()
	if max > 0 && len(s.answers.pending) >= max {
		forgotten = s.compactAnswersLocked(max-max/4-1, nowMs)
	}
	s.answers.pending = append(s.answers.pending, a)
	return forgotten
}

// compactAnswersLocked keeps at most keep entries: the owed, unexpired ones, newest first.
func (s *Session) compactAnswersLocked(keep int, nowMs int64) (forgotten int) {
	all := s.answers.pending
	p := all[:0]
	for _, e := range all {
		if (e.Ack || e.Reply) && (e.ExpiresAtMs == 0 || nowMs < e.ExpiresAtMs) {
			p = append(p, e)
		}
	}
	if over := len(p) - max(keep, 0); over > 0 {
		p, forgotten = p[:copy(p, p[over:])], over
	}
	clear(all[len(p):]) // drop references to the records' strings
	s.answers.pending = p
	return forgotten
}

// TakeAnswer checks an answer (reply false: PUSH_ACK; true: PUSH_REPLY) against the pushes the
// session waits on and, when it is owed, returns the push and marks that answer given. The
// newest entries are searched first (answers follow their pushes closely). An answered push
// stays as a tombstone (nothing owed) until a compaction, so a second answer is refused.
func (s *Session) TakeAnswer(messageID string, reply bool, nowMs int64) (Answerable, Refusal) {
	s.answers.mu.Lock()
	defer s.answers.mu.Unlock()
	for i := len(s.answers.pending) - 1; i >= 0; i-- {
		e := &s.answers.pending[i]
		if e.MessageID != messageID {
			continue
		}
		if e.ExpiresAtMs != 0 && nowMs >= e.ExpiresAtMs {
			return Answerable{}, RefusedExpired
		}
		owed := &e.Ack
		if reply {
			owed = &e.Reply
		}
		if !*owed {
			return Answerable{}, RefusedNotAsked
		}
		*owed = false
		return *e, ""
	}
	return Answerable{}, RefusedUnknown
}

// Refused counts one refused answer and returns how many the session has had.
func (s *Session) Refused() int {
	s.answers.mu.Lock()
	defer s.answers.mu.Unlock()
	s.answers.refused++
	return s.answers.refused
}
