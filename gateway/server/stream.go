package server

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// errNoTLS is a write to a connection whose TLS handshake failed or was never started (a
// connection refused by a limit is closed without one): nothing can be sent on it.
var errNoTLS = errors.New("no TLS session")

// maxCoalesceBytes bounds the buffers kept in coalescePool; a larger batch gets a buffer of
// its own, dropped after the write.
const maxCoalesceBytes = 64 << 10

// coalescePool holds the buffers that join a batch of frames for one TLS write, so that an
// idle connection holds none.
var coalescePool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// stream is a session's transport on a TLS connection (listen.tls): the TLS counterpart of
// socket. Its connection's reader goroutine (tls.go) runs the TLS handshake and reports its
// end through ready; writes wait for it. The reader owns the end of the connection: once it
// returns, the connection is closed (readerDone) and never touched again.
type stream struct {
	srv *Server
	raw net.Conn
	tc  *tls.Conn

	ready chan struct{} // closed when the TLS handshake ended; tlsUp says how
	sent  chan struct{} // closed when Close's close_notify and FIN went out (halfClose)
	tlsUp bool          // written before ready is closed, read after

	mu      sync.Mutex  // guards writing, closed, done, timer
	writing bool        // a Write is in progress
	closed  bool        // Close was called
	done    bool        // the reader returned and closed the connection
	timer   *time.Timer // while lingering: closes the connection at the bound
}

func newStream(s *Server, raw net.Conn, cfg *tls.Config) *stream {
	return &stream{srv: s, raw: raw, tc: tls.Server(raw, cfg), ready: make(chan struct{}), sent: make(chan struct{})}
}

// handshakeDone records the end of the TLS handshake (or that none will be made).
func (k *stream) handshakeDone(up bool) {
	k.tlsUp = up
	close(k.ready)
}

// Write sends every frame in one TLS write: joined into one buffer, they go out as few TLS
// records (one up to 16 KiB) in as few socket writes. Only the session's flusher calls it. A
// frame queued before the TLS handshake ended (a refusal, a drain GOAWAY) waits for it: the
// handshake has the connection's handshake deadline, and Close ends it at once.
func (k *stream) Write(bufs [][]byte) error {
	<-k.ready
	if !k.tlsUp {
		return errNoTLS
	}
	k.mu.Lock()
	if k.closed || k.done {
		k.mu.Unlock()
		return errGone
	}
	k.writing = true
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.writing = false
		k.mu.Unlock()
	}()

	_ = k.raw.SetWriteDeadline(time.Now().Add(writeTimeout))
	if len(bufs) == 1 {
		_, err := k.tc.Write(bufs[0])
		return err
	}
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	var joined []byte
	pooled := n <= maxCoalesceBytes
	if pooled {
		p := coalescePool.Get().(*[]byte)
		defer coalescePool.Put(p)
		joined = (*p)[:0]
		defer func() { *p = joined[:0] }()
	} else {
		joined = make([]byte, 0, n)
	}
	for _, b := range bufs {
		joined = append(joined, b...)
	}
	_, err := k.tc.Write(joined)
	return err
}

// Close ends the connection without a reset (see closeLinger): after the TLS handshake, a
// close_notify alert and a FIN, then the reader keeps reading and discarding until the peer
// closes or closeLinger passes. Before or without a TLS session there is nothing to protect:
// the connection is closed at once.
func (k *stream) Close() error {
	k.mu.Lock()
	if k.closed || k.done {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	handshaken := false
	select {
	case <-k.ready:
		handshaken = k.tlsUp
	default:
	}
	if !handshaken {
		k.mu.Unlock()
		return k.raw.Close() // also ends a TLS handshake in progress
	}
	writing := k.writing
	k.srv.lingering.Add(1)
	k.srv.m.Lingering.Inc()
	k.timer = time.AfterFunc(closeLinger, func() {
		k.srv.m.LingerTimeouts.Inc()
		_ = k.raw.Close()
	})
	k.mu.Unlock()
	// Off the caller's goroutine: close_notify may wait (up to the 5 s crypto/tls gives it,
	// less the linger bound, which closes the connection) for a peer that reads nothing, and
	// Close is called from drain loops over every connection.
	go k.halfClose(writing)
	return nil
}

// halfClose sends close_notify, unless a write is in progress (the session is being aborted:
// close_notify would wait for that write), then FIN, which also fails that write.
func (k *stream) halfClose(writing bool) {
	defer close(k.sent)
	if !writing {
		_ = k.tc.CloseWrite()
	}
	if tcp, ok := k.raw.(interface{ CloseWrite() error }); !ok || tcp.CloseWrite() != nil {
		_ = k.raw.Close()
	}
}

// awaitClose waits, at most closeLinger, until Close sent close_notify and FIN. The reader
// calls it when the peer's FIN ends a session that is closing: the gateway's last frames are
// still on their way, and the reader returning would close the connection and drop them (a
// client that half-closes right after a frame the gateway refuses got no ERROR).
func (k *stream) awaitClose() {
	t := time.NewTimer(closeLinger)
	defer t.Stop()
	select {
	case <-k.sent:
	case <-t.C:
	}
}

// readerDone is called by the reader when it returns: the peer closed (or the linger bound
// did): the connection is closed and no longer lingers.
func (k *stream) readerDone() {
	k.mu.Lock()
	k.done = true
	t := k.timer
	k.timer = nil
	k.mu.Unlock()
	_ = k.raw.Close()
	if t != nil {
		t.Stop()
		k.srv.lingering.Add(-1)
		k.srv.m.Lingering.Dec()
	}
}
