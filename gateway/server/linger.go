package server

import (
	"net"
	"sync"
	"time"
)

// linger is the life of a connection whose reader goroutine owns its end, shared by the TLS
// (stream) and WebSocket (wsConn) transports: the reader sets it up (TLS handshake, upgrade)
// and reports how (setUp); Close half-closes it (the transport's last bytes, then FIN) and
// lets it linger, at most closeLinger, while the reader reads and discards until the peer
// closes (see closeLinger); the reader then closes it (readerDone) and nothing touches it
// again. socket is the netpoll counterpart, where netpoll owns the end.
//
// The transports reach mu's fields only through these methods.
type linger struct {
	srv   *Server
	raw   net.Conn
	ready chan struct{} // closed by the reader when the set-up ended (setUp); up says how
	sent  chan struct{} // closed when the transport's half-close returned (close)

	mu      sync.Mutex  // guards timer, closed, done, writing
	timer   *time.Timer // while lingering: closes the connection at the bound
	closed  bool        // Close was called
	done    bool        // the reader returned and closed the connection
	writing bool        // a write marked by startWrite is in progress
	up      bool        // written by the reader before ready is closed, read after
}

func newLinger(s *Server, raw net.Conn) linger {
	return linger{srv: s, raw: raw, ready: make(chan struct{}), sent: make(chan struct{})}
}

// setUp records the end of the set-up (or that none will be made); the reader calls it once.
func (l *linger) setUp(up bool) {
	l.up = up
	close(l.ready)
}

// waitUp waits for the end of the set-up and reports whether frames can be sent. The set-up
// has the connection's handshake deadline, and Close ends it at once.
func (l *linger) waitUp() bool {
	<-l.ready
	return l.up
}

// open reports whether frames may still be written: Close was not called and the reader did
// not close the connection.
func (l *linger) open() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.closed && !l.done
}

// startWrite marks a write in progress if the connection is open (reported); endWrite ends
// it. Close hands the mark to the half-close.
func (l *linger) startWrite() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.done {
		return false
	}
	l.writing = true
	return true
}

func (l *linger) endWrite() {
	l.mu.Lock()
	l.writing = false
	l.mu.Unlock()
}

// close is the transports' Close. The first call closes the connection at once when it was
// not set up (yet): there is nothing to protect. Otherwise it starts the linger bound and
// runs halfClose off the caller's goroutine (its last bytes may wait for a write in progress
// or a peer that reads nothing, bounded by the linger timer, which closes the connection;
// Close is called from drain loops over every connection), with whether a startWrite mark
// was set; sent is closed when it returns.
func (l *linger) close(halfClose func(writing bool)) error {
	l.mu.Lock()
	if l.closed || l.done {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	up := false
	select {
	case <-l.ready:
		up = l.up
	default:
	}
	if !up {
		l.mu.Unlock()
		return l.raw.Close() // also ends a set-up in progress
	}
	writing := l.writing
	l.timer = l.srv.startLinger(l.raw.Close)
	l.mu.Unlock()
	go func() {
		defer close(l.sent)
		halfClose(writing)
	}()
	return nil
}

// fin sends FIN (the end of a half-close); a connection that cannot be half-closed is closed.
func (l *linger) fin() {
	if tcp, ok := l.raw.(interface{ CloseWrite() error }); !ok || tcp.CloseWrite() != nil {
		_ = l.raw.Close()
	}
}

// awaitClose waits, at most closeLinger, until Close's half-close went out. The reader calls
// it when the peer's FIN ends a session that is closing: the gateway's last frames (an ERROR,
// a GOAWAY, a WebSocket close frame) are still on their way, and the reader returning would
// close the connection and drop them (a client that half-closes right after a frame the
// gateway refuses got no ERROR; FuzzWebSocket found it: TestTLSHalfCloseAfterRefusedFrame,
// TestWebSocketHalfCloseAfterRefusedMessage).
func (l *linger) awaitClose() {
	t := time.NewTimer(closeLinger)
	defer t.Stop()
	select {
	case <-l.sent:
	case <-t.C:
	}
}

// readerDone is called by the reader when it returns: the peer closed (or the linger bound
// did): the connection is closed and no longer lingers.
func (l *linger) readerDone() {
	l.mu.Lock()
	l.done = true
	t := l.timer
	l.timer = nil
	l.mu.Unlock()
	_ = l.raw.Close()
	l.srv.endLinger(t)
}

// startLinger counts a connection that starts to linger (socket, linger) and returns the
// timer that closes it (closeConn) at the bound.
func (s *Server) startLinger(closeConn func() error) *time.Timer {
	s.lingering.Add(1)
	s.m.Lingering.Inc()
	return time.AfterFunc(closeLinger, func() {
		s.m.LingerTimeouts.Inc()
		_ = closeConn()
	})
}

// endLinger stops the linger timer t of a connection now closed and counts the linger's end;
// nil t: the connection did not linger (or its end was counted already).
func (s *Server) endLinger(t *time.Timer) {
	if t == nil {
		return
	}
	t.Stop()
	s.lingering.Add(-1)
	s.m.Lingering.Dec()
}
