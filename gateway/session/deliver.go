package session

import "time"

// Deliver sends one frame that has nothing to be merged with (a lone downlink record) and,
// when it can, writes it at once on the caller's goroutine: if the session has nothing
// queued, no writer and is not closing, and its transport writes without blocking
// (WriterNow), the frame goes to the socket in one system call made under the session's lock,
// without being queued and without being charged to the Budget when the socket takes it all
// (it is never in flight beyond the call). The write is counted in t, as Wake's are.
//
// What the socket does not take (its buffer is full) stays in flight: charged to the Budget
// (never refused nor shed for: part of the frame may be on the wire) and handed to a flush
// goroutine, which writes it first, as Wake does with the rest of a batch. Any other session
// (a writer at work, frames queued, closing, another transport, a frame over the queue bound)
// gets the frame as Queue + Wake would give it. The lock held across the write keeps every
// guarantee of the queue: a Send or CloseAfter arriving meanwhile waits for the write and
// then finds either no writer (the frame was written) or the flush goroutine (the rest goes
// out first), so the order per session and the single writer hold.
func (s *Session) Deliver(frame []byte, t *Tally) error {
	s.mu.Lock()
	w, now := s.transport.(WriterNow)
	if !now || s.flushing || s.closing || len(s.queue) > 0 || len(frame) > s.limits.QueueBytes {
		s.mu.Unlock()
		owed, err := s.enqueue(frame, true)
		if owed {
			s.Wake(t)
		}
		return err
	}
	if t == nil {
		var one Tally
		defer one.Report()
		t = &one
	}
	t.one[0] = frame
	n, err := w.WriteNow(t.one[:])
	t.one[0] = nil
	if err != nil {
		s.mu.Unlock()
		s.Abort(ReasonWriteFailed)
		return nil // accepted, then lost with the connection, as a queued frame would be
	}
	if n == len(frame) {
		s.mu.Unlock()
		t.add(s, 1, n)
		return nil
	}
	left := frame[n:]
	if b := s.limits.Budget; b != nil {
		b.used.Add(int64(len(left)))
	}
	s.flushing = true
	s.writing, s.writeStart = len(left), time.Now().UnixNano()
	s.mu.Unlock()
	if n > 0 {
		t.add(s, 0, n) // the frame is counted by the flush that finishes it
	}
	s.goFlushRest([][]byte{left})
	return nil
}
