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
// end (linger.setUp); writes wait for it. The reader owns the end of the connection (linger).
type stream struct {
	linger // the set-up is the TLS handshake; the half-close, close_notify then FIN
	tc     *tls.Conn
}

func newStream(s *Server, raw net.Conn, cfg *tls.Config) *stream {
	return &stream{linger: newLinger(s, raw), tc: tls.Server(raw, cfg)}
}

// Write sends every frame in one TLS write: joined into one buffer, they go out as few TLS
// records (one up to 16 KiB) in as few socket writes. Only the session's flusher calls it. A
// frame queued before the TLS handshake ended (a refusal, a drain GOAWAY) waits for it: the
// handshake has the connection's handshake deadline, and Close ends it at once.
func (k *stream) Write(bufs [][]byte) error {
	if !k.waitUp() {
		return errNoTLS
	}
	if !k.startWrite() {
		return errGone
	}
	defer k.endWrite()

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
	return k.close(k.halfClose)
}

// halfClose sends close_notify, unless a write is in progress (the session is being aborted:
// close_notify would wait for that write), then FIN, which also fails that write.
func (k *stream) halfClose(writing bool) {
	if !writing {
		_ = k.tc.CloseWrite()
	}
	k.fin()
}
