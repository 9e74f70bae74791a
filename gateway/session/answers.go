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
	// is still held (here or in the replay window), or it was forgotten as the oldest of too
	// many.
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

// ExpectAnswer records a push sent on the session that waits for an answer. Expired entries
// are dropped first; a session already holding max entries forgets its oldest, reported as
// forgotten (its answer will be refused and the publisher gets EXPIRED). A push already held
// (a replayed or duplicated record with the same message id) is updated in place.
func (s *Session) ExpectAnswer(a Answerable, max int, nowMs int64) (forgotten bool) {
	s.answers.mu.Lock()
	defer s.answers.mu.Unlock()
	p := s.answers.pending[:0]
	for _, e := range s.answers.pending {
		if e.MessageID == a.MessageID {
			continue
		}
		if e.ExpiresAtMs == 0 || nowMs < e.ExpiresAtMs {
			p = append(p, e)
		}
	}
	clear(s.answers.pending[len(p):]) // drop references to the records' strings
	if len(p) >= max && max > 0 {
		n := copy(p, p[len(p)-max+1:])
		clear(p[n:])
		p, forgotten = p[:n], true
	}
	s.answers.pending = append(p, a)
	return forgotten
}

// TakeAnswer checks an answer (reply false: PUSH_ACK; true: PUSH_REPLY) against the pushes the
// session waits on and, when it is owed, returns the push and marks that answer given. An
// answered push stays as a tombstone (nothing owed) until it expires or is the oldest of too
// many, so a second answer is refused.
func (s *Session) TakeAnswer(messageID string, reply bool, nowMs int64) (Answerable, Refusal) {
	s.answers.mu.Lock()
	defer s.answers.mu.Unlock()
	for i := range s.answers.pending {
		e := &s.answers.pending[i]
		if e.MessageID != messageID {
			continue
		}
		if e.ExpiresAtMs != 0 && nowMs >= e.ExpiresAtMs {
			s.removeAnswerLocked(i)
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

func (s *Session) removeAnswerLocked(i int) {
	p := s.answers.pending
	copy(p[i:], p[i+1:])
	p[len(p)-1] = Answerable{}
	s.answers.pending = p[:len(p)-1]
	if len(s.answers.pending) == 0 {
		s.answers.pending = nil // an idle session keeps no array
	}
}
