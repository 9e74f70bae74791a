// Package session holds what the gateway knows about each client: identity, the bounded
// outbound queue and its writer, idle tracking, and the manager that indexes live sessions by
// session id, user and group.
package session

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Transport is the write side of a connection. Write sends every buffer and flushes (it may
// block on a slow peer, but only the session's own flusher ever calls it); it may keep
// referencing the buffers after it returns (netpoll sends them uncopied), which is safe
// because a queued frame is never modified. Close ends the connection. The server implements
// it on netpoll (socket.go) and on crypto/tls (stream.go); tests on anything.
type Transport interface {
	Write(bufs [][]byte) error
	Close() error
}

// WriterNow is a Transport that can also write without blocking: WriteNow writes as much of
// bufs as the socket takes at once and returns how many bytes that was (0 when the socket is
// full); err is for a connection that failed, not for a full socket. Like Write, only the
// session's writer of the moment calls it, and only when nothing of the session is still
// buffered in the transport (every Write returned). The server's netpoll socket and its
// plaintext WebSocket transport implement it; Wake uses it to write a batch on the caller's
// goroutine (see Wake).
type WriterNow interface {
	WriteNow(bufs [][]byte) (n int, err error)
}

// Tally sums the writes Wake made on its caller's goroutine, so that the caller reports them
// to Hooks.Flushed once (Report) rather than once per session. The zero value is ready; one
// Tally belongs to one goroutine.
type Tally struct {
	hooks                 *Hooks
	writes, frames, bytes int
	// one is the buffer list of Deliver's one-frame write, kept here rather than made per
	// write (a slice passed to an interface method is allocated).
	one [1][]byte
}

// add counts one write of the session's; a session with other hooks reports the sum first.
func (t *Tally) add(s *Session, frames, bytes int) {
	if t.hooks != s.hooks {
		t.Report()
		t.hooks = s.hooks
	}
	t.writes++
	t.frames += frames
	t.bytes += bytes
}

// Report passes the writes counted since the last Report to Hooks.Flushed, in one call.
func (t *Tally) Report() {
	if t.writes > 0 && t.hooks != nil && t.hooks.Flushed != nil {
		t.hooks.Flushed(t.writes, t.frames, t.bytes)
	}
	t.writes, t.frames, t.bytes = 0, 0, 0
}

// Identity is who the handshake authenticated.
type Identity struct {
	SessionID     string
	UserID        string
	DeviceID      string
	Groups        []string
	ClientVersion string
}

// Limits bound one session's outbound queue.
type Limits struct {
	// QueueFrames and QueueBytes bound frames accepted but not yet written. Exceeding either
	// closes the session as a slow consumer: its memory stays bounded whatever the client does.
	QueueFrames int
	QueueBytes  int
	// Budget, when set, is the outbound budget this session shares with the others.
	Budget *Budget
	// SlowCloseGrace bounds how long a session closed as a slow consumer may take to write
	// what was in flight and its ERROR SLOW_CONSUMER; then it is aborted (transport closed,
	// queue dropped). Zero leaves it to the transport's own write timeout.
	SlowCloseGrace time.Duration
}

// ErrClosed is returned when sending on a session that is closed or closing.
var ErrClosed = errors.New("session closed")

// ErrSlowConsumer is returned by the send that found the queue full (and closed the session).
var ErrSlowConsumer = errors.New("slow consumer: outbound queue full")

// The ERROR frames of a slow-consumer close: the session's own queue filled up, or the
// server's outbound budget was exceeded and this session was among the slowest.
var (
	queueFullError = errorFrame(pb.ErrorCode_ERROR_CODE_SLOW_CONSUMER, "outbound queue full: the client reads too slowly")
	shedError      = errorFrame(pb.ErrorCode_ERROR_CODE_SLOW_CONSUMER, "the gateway's outbound memory budget is exhausted and this client is among the slowest readers")
)

func errorFrame(code pb.ErrorCode, msg string) []byte {
	b, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Error{Error: &pb.Error{Code: code, Message: msg, Fatal: true}}}, 1<<10)
	if err != nil {
		panic(err) // a constant frame; a failure is a programming error
	}
	return b
}

// Hooks let the owner observe a session without the session knowing about metrics or logs.
type Hooks struct {
	// Closed is called once, after the transport is closed.
	Closed func(s *Session, reason CloseReason)
	// Flushed is called with the number of socket writes, frames and bytes written: after
	// each write of a flusher (writes 1), and once per Tally for the writes Wake made on its
	// caller's goroutine.
	Flushed func(writes, frames, bytes int)
	// Go runs a flush in the background, where it may block on a slow peer; nil starts a
	// goroutine, which is what the server does: handing flushes to a goroutine pool measured
	// slower than starting a goroutine each (BenchmarkFlushStart, docs/benchmarks.md).
	Go func(func())
}

// Session is one client connection, from accept to close. Identity is filled in by the
// handshake, before the session is registered with a Manager and so before any other
// goroutine reads it.
type Session struct {
	Identity
	// Remote is the client's address; Connected the accept time. Both immutable.
	Remote    string
	Connected time.Time

	transport Transport
	limits    *Limits // shared by the server's sessions: not a copy per connection
	hooks     *Hooks

	// established is set once Identity is final; other goroutines read Identity only after
	// seeing it (or through the Manager, which the handshake registers with afterwards).
	established atomic.Bool

	// lastSeen is the Unix nanotime of the last inbound frame; written by the connection's
	// reader, read by the idle timer.
	lastSeen atomic.Int64

	// answers: the pushes this session may answer (answers.go), guarded by their own mutex.
	answers answers

	// index is the session's place in its Manager's slice of every session; owned by that
	// Manager, under its lock (it fits the size class: Session stays 320 bytes).
	index int

	// Outbound state, guarded by mu. The queue holds encoded frames, shared read-only with
	// other sessions when a broadcast is encoded once.
	mu          sync.Mutex
	queue       [][]byte
	queuedBytes int
	writing     int   // bytes of the write in progress (taken off the queue, not yet written)
	writeStart  int64 // Unix nanotime the write in progress started; 0 when none or when Wake makes it (it does not wait)
	// flushing: a writer owns the transport's write side (a flush goroutine, or Wake on its
	// caller's goroutine), or one is owed (wakeOwed: nothing writes until the Wake a Queue
	// caller owes).
	flushing  bool
	wakeOwed  bool
	closing   bool        // no more frames accepted; close after the queue drains
	closed    bool        // transport closed
	slow      bool        // closed as a slow consumer
	releasing bool        // the write in progress counts as releasing in the budget (see Budget)
	reason    CloseReason // why closing/closed
	flushedCh chan struct{}
}

// New makes a session writing to t.
func New(t Transport, remote string, limits *Limits, hooks *Hooks, now time.Time) *Session {
	s := &Session{Remote: remote, Connected: now, transport: t, limits: limits, hooks: hooks}
	s.lastSeen.Store(now.UnixNano())
	return s
}

// Establish sets the identity the handshake authenticated. Call it once, from the reader.
func (s *Session) Establish(id Identity) {
	s.Identity = id
	s.established.Store(true)
}

// Established reports whether the handshake completed; Identity is readable once it has.
func (s *Session) Established() bool { return s.established.Load() }

// Touch records inbound activity.
func (s *Session) Touch(now time.Time) { s.lastSeen.Store(now.UnixNano()) }

// LastSeen is the time of the last inbound activity.
func (s *Session) LastSeen() time.Time { return time.Unix(0, s.lastSeen.Load()) }

// Send queues an encoded frame and starts the session's flush if none is running. It never
// blocks: a full queue closes the session as a slow consumer (see closeSlowLocked) and returns
// ErrSlowConsumer. With a Budget, a send that takes the server over it first sheds the slowest
// consumers, which may include this session.
func (s *Session) Send(frame []byte) error {
	_, err := s.enqueue(frame, false)
	return err
}

// Queue queues an encoded frame like Send but leaves the write to the caller's Wake, so that a
// caller queueing a batch of frames on many sessions (the downlink consumer) writes to each
// session once, with the whole batch queued: one write carries the batch. It returns true
// when the caller owes the session a Wake: the session had no flush running and none was
// owed. The caller must call Wake once for each true, as soon as its batch is queued.
//
// Queue starts the flush itself, and owes nothing, once the frames waiting for a wake reach
// half the session's queue bound (frames or bytes) or the shared Budget is more than half
// used: a batch never makes a session a slow consumer, nor sheds sessions, by deferring
// writes that would otherwise have drained.
func (s *Session) Queue(frame []byte) (wake bool, err error) {
	return s.enqueue(frame, true)
}

// Wake writes what a Queue returning true deferred; it does nothing when the flush was
// started since (by a Send, a close, or Queue under pressure).
//
// On a transport that can write without blocking (WriterNow: the netpoll socket), Wake writes
// the queued frames itself, on the caller's goroutine, in one system call that never waits
// for the peer, and counts the write in t (the caller reports t once per batch; nil reports
// it at once). Only what the socket did not take (its buffer is full: a slow or busy reader)
// is handed to a flush goroutine, which writes the rest first and may block as any flush. A
// session that is closing, or that was queued more while this write ran, also gets a flush
// goroutine, which finishes the close or the queue. Other transports (TLS, wss://) get a
// flush goroutine for the whole batch.
func (s *Session) Wake(t *Tally) {
	s.mu.Lock()
	if !s.wakeOwed {
		s.mu.Unlock()
		return
	}
	s.wakeOwed = false
	w, now := s.transport.(WriterNow)
	if !now || s.closing || s.closed || len(s.queue) == 0 {
		s.mu.Unlock()
		s.goFlush()
		return
	}
	batch, bytes := s.queue, s.queuedBytes
	s.queue, s.queuedBytes = nil, 0
	// writeStart stays 0: this write does not wait, so the session is not stalled in it.
	s.writing = bytes
	s.mu.Unlock()

	n, err := w.WriteNow(batch)
	if err != nil {
		s.mu.Lock()
		s.endWriteLocked()
		s.mu.Unlock()
		s.Abort(ReasonWriteFailed)
		s.mu.Lock()
		s.flushing = false
		s.notifyFlushedLocked()
		s.mu.Unlock()
		return
	}
	var left [][]byte
	if n < bytes {
		left = rest(batch, n)
	}
	if n > 0 {
		// Frames are counted where they are finished: a frame cut by a full socket by the flush.
		if t == nil {
			var one Tally
			one.add(s, len(batch)-len(left), n)
			one.Report()
		} else {
			t.add(s, len(batch)-len(left), n)
		}
	}
	s.mu.Lock()
	if left != nil {
		// The socket is full: the rest of the batch stays in flight (s.writing) and goes out
		// first, on a flush goroutine that waits for the socket like any flush.
		s.wroteLocked(n)
		s.writeStart = time.Now().UnixNano()
		s.mu.Unlock()
		s.goFlushRest(left)
		return
	}
	s.endWriteLocked()
	if !s.closed && (len(s.queue) > 0 || s.closing) {
		// Queued by a Send meanwhile, or closing (CloseAfter, a slow consumer): the flush
		// goroutine writes the rest and finishes the close.
		s.mu.Unlock()
		s.goFlush()
		return
	}
	s.flushing = false
	s.notifyFlushedLocked()
	s.mu.Unlock()
}

// rest is what remains of bufs once its first n bytes are written (bufs holds more than n
// bytes). It reuses bufs' array, which the session took off its queue and owns; the frames
// themselves are not modified.
func rest(bufs [][]byte, n int) [][]byte {
	for n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	bufs[0] = bufs[0][n:]
	return bufs
}

// enqueue is Send (deferred false) and Queue (deferred true).
func (s *Session) enqueue(frame []byte, deferred bool) (owed bool, err error) {
	b := s.limits.Budget
	if b != nil {
		b.charge(len(frame))
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		b.release(len(frame))
		return false, ErrClosed
	}
	if len(s.queue) >= s.limits.QueueFrames || s.queuedBytes+len(frame) > s.limits.QueueBytes {
		s.closeSlowLocked(queueFullError)
		s.mu.Unlock()
		b.release(len(frame))
		return false, ErrSlowConsumer
	}
	s.queue = append(s.queue, frame)
	s.queuedBytes += len(frame)
	start := false
	switch {
	case deferred && (!s.flushing || s.wakeOwed) && s.pressedLocked():
		// Too much waits for a wake: flush now, whoever owed the wake.
		start, s.flushing, s.wakeOwed = true, true, false
	case deferred && !s.flushing:
		s.flushing, s.wakeOwed, owed = true, true, true
	case deferred:
		// A flush runs (it takes this frame before it stops) or another caller owes the wake.
	case !s.flushing || s.wakeOwed:
		// A frame sent outside a batch (a RESPONSE, a PONG) does not wait for one to end.
		start, s.flushing, s.wakeOwed = true, true, false
	}
	s.mu.Unlock()
	if start {
		s.goFlush()
	}
	return owed, nil
}

// pressedLocked reports whether frames waiting for a wake must be flushed now: the queue is
// at half its bound, or the shared budget is more than half used.
func (s *Session) pressedLocked() bool {
	if 2*len(s.queue) >= s.limits.QueueFrames || 2*s.queuedBytes >= s.limits.QueueBytes {
		return true
	}
	b := s.limits.Budget
	return b != nil && 2*(b.used.Load()-b.releasing.Load()) > b.limit
}

// closeSlowLocked closes the session as a slow consumer so that the client still learns why:
// the queue is dropped (its memory freed at once), the ERROR SLOW_CONSUMER frame takes its
// place behind the write in flight, and the connection closes once that is written. A client
// that reads nothing more is aborted after Limits.SlowCloseGrace. It returns the bytes freed
// now plus the bytes in flight, which the budget counts as releasing.
func (s *Session) closeSlowLocked(last []byte) int64 {
	b := s.limits.Budget
	dropped := s.queuedBytes
	s.queue, s.queuedBytes = nil, 0
	s.closing, s.slow, s.reason = true, true, ReasonSlowConsumer
	s.queue = append(s.queue, last)
	s.queuedBytes = len(last)
	if b != nil {
		// The ERROR frame is the last word and is never refused, like CloseAfter's.
		b.used.Add(int64(len(last) - dropped))
		b.releasing.Add(int64(s.writing))
		s.releasing = s.writing > 0
	}
	if grace := s.limits.SlowCloseGrace; grace > 0 {
		time.AfterFunc(grace, func() { s.Abort(ReasonSlowConsumer) })
	}
	if !s.flushing || s.wakeOwed {
		// The ERROR frame does not wait for a batch's wake.
		s.flushing, s.wakeOwed = true, false
		s.goFlush()
	}
	return int64(dropped + s.writing)
}

// ShedSlow closes the session as a slow consumer because the server's outbound budget is
// exhausted (the Budget's shed function calls it on the slowest sessions first). It returns
// the bytes this frees, 0 when the session was already closed or closing as a slow consumer.
func (s *Session) ShedSlow() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.slow {
		return 0
	}
	return s.closeSlowLocked(shedError)
}

// Outbound describes the session's unwritten bytes for choosing whom to shed: pending is
// queued plus in-flight bytes; stalledSince is when the write in progress started (zero when
// none is); shed reports whether it was already closed as a slow consumer (or is closed).
func (s *Session) Outbound() (pending int64, stalledSince int64, shed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.queuedBytes + s.writing), s.writeStart, s.slow || s.closed
}

// CloseAfter queues a last frame (an ERROR or GOAWAY; nil for none), stops accepting frames
// and closes the connection once everything queued is written. It returns false when the
// session was already closing.
func (s *Session) CloseAfter(last []byte, reason CloseReason) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	s.closing = true
	s.reason = reason
	if last != nil {
		// The last word may exceed the queue bound (and the budget) by one frame: it is what
		// explains the close.
		s.queue = append(s.queue, last)
		s.queuedBytes += len(last)
		if b := s.limits.Budget; b != nil {
			b.used.Add(int64(len(last)))
		}
	}
	start := !s.flushing || s.wakeOwed // the last frame does not wait for a batch's wake
	s.flushing, s.wakeOwed = true, false
	s.mu.Unlock()
	if start {
		s.goFlush()
	}
	return true
}

// Abort closes the connection now, dropping whatever is queued (slow consumer, hard drain
// deadline, peer gone). The flusher, if blocked in Write, returns when the transport closes.
func (s *Session) Abort(reason CloseReason) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if !s.closing {
		s.closing = true
		s.reason = reason
	}
	s.closed = true
	dropped := s.queuedBytes
	s.queue, s.queuedBytes = nil, 0
	reason = s.reason
	s.mu.Unlock()
	// A write in flight keeps its bytes until it returns, which closing the transport forces.
	s.limits.Budget.release(dropped)
	s.finish(reason)
}

// Closing reports whether the session stopped accepting frames, and why.
func (s *Session) Closing() (bool, CloseReason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing, s.reason
}

// Queued is the number of frames and bytes waiting to be written.
func (s *Session) Queued() (frames, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue), s.queuedBytes
}

// Flushed returns a channel closed once the queue is empty and no write is in progress (or
// the session is closed), for drain to wait on.
func (s *Session) Flushed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.flushing || s.closed {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if s.flushedCh == nil {
		s.flushedCh = make(chan struct{})
	}
	return s.flushedCh
}

func (s *Session) goFlush() {
	if s.hooks != nil && s.hooks.Go != nil {
		s.hooks.Go(s.flush)
		return
	}
	go s.flush()
}

// goFlushRest starts a flush that first writes first: the rest of a write Wake began, still
// counted in s.writing.
func (s *Session) goFlushRest(first [][]byte) {
	if s.hooks != nil && s.hooks.Go != nil {
		s.hooks.Go(func() { s.flushFrom(first) })
		return
	}
	go s.flushFrom(first)
}

// flush writes the queue in batches: every frame queued while a write was in progress goes out
// in the next single Write, so bursts coalesce into few syscalls.
func (s *Session) flush() { s.flushFrom(nil) }

// flushFrom is flush, writing first (when not nil) before the queue: the rest of a write Wake
// began, whose bytes s.writing still counts.
func (s *Session) flushFrom(first [][]byte) {
	s.mu.Lock()
	for {
		if s.closed {
			if first != nil {
				s.endWriteLocked()
			}
			s.flushing = false
			s.notifyFlushedLocked()
			s.mu.Unlock()
			return
		}
		batch, bytes := first, s.writing
		if first == nil {
			batch, bytes = s.queue, s.queuedBytes
			if len(batch) == 0 {
				s.flushing = false
				s.notifyFlushedLocked()
				closing, reason := s.closing, s.reason
				if closing {
					s.closed = true
				}
				s.mu.Unlock()
				if closing {
					s.finish(reason)
				}
				return
			}
			s.queue, s.queuedBytes = nil, 0
			s.writing, s.writeStart = bytes, time.Now().UnixNano()
		}
		first = nil
		s.mu.Unlock()

		err := s.transport.Write(batch)
		if err == nil && s.hooks != nil && s.hooks.Flushed != nil {
			s.hooks.Flushed(1, len(batch), bytes)
		}
		s.mu.Lock()
		s.endWriteLocked()
		if err != nil {
			s.mu.Unlock()
			s.Abort(ReasonWriteFailed)
			s.mu.Lock()
		}
	}
}

// wroteLocked takes n bytes written off the write in progress: they leave the budget.
func (s *Session) wroteLocked(n int) {
	if b := s.limits.Budget; b != nil {
		b.release(n)
		if s.releasing {
			b.releasing.Add(-int64(n))
		}
	}
	s.writing -= n
}

// endWriteLocked ends the write in progress, written or failed: its bytes leave the budget.
func (s *Session) endWriteLocked() {
	s.wroteLocked(s.writing)
	s.releasing = false
	s.writeStart = 0
}

func (s *Session) notifyFlushedLocked() {
	if s.flushedCh != nil {
		close(s.flushedCh)
		s.flushedCh = nil
	}
}

func (s *Session) finish(reason CloseReason) {
	_ = s.transport.Close()
	if s.hooks != nil && s.hooks.Closed != nil {
		s.hooks.Closed(s, reason)
	}
}
