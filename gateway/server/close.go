package server

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/cloudwego/netpoll"
)

// closeLinger bounds how long a connection the gateway closed stays half-open, waiting for the
// peer's FIN. Closing a socket whose receive buffer holds unread bytes (a HANDSHAKE or PINGs
// that crossed our GOAWAY or ERROR) makes the kernel send RST instead of FIN, and some client
// stacks then drop the last frame we sent. So a close is a half-close: FIN after the last
// frame (shutdown SHUT_WR), keep reading and discarding, and close when the peer closes too or
// at this bound (counted in tcpgw_linger_timeouts_total).
const closeLinger = 2 * time.Second

// closer closes one client connection without a reset (see closeLinger).
type closer struct {
	srv *Server
	nc  netpoll.Connection

	mu    sync.Mutex  // guards gone, timer
	gone  bool        // netpoll closed the connection: its fd may already belong to another
	timer *time.Timer // while lingering: closes the connection at the bound
}

// goneNow is called from the connection's close callback, before netpoll closes the fd (its
// own callback runs last): from then on the fd is never touched.
func (cl *closer) goneNow() {
	cl.mu.Lock()
	cl.gone = true
	t := cl.timer
	cl.timer = nil
	cl.mu.Unlock()
	if t != nil {
		t.Stop()
		cl.srv.lingering.Add(-1)
		cl.srv.m.Lingering.Dec()
	}
}

// close half-closes the connection and lets it linger; a connection already gone, or one that
// cannot be half-closed, is closed at once.
func (cl *closer) close() error {
	cl.mu.Lock()
	if cl.gone || cl.timer != nil {
		cl.mu.Unlock()
		return nil // closed, or already lingering
	}
	fd, ok := cl.nc.(interface{ Fd() int })
	if !ok || syscall.Shutdown(fd.Fd(), syscall.SHUT_WR) != nil {
		cl.mu.Unlock()
		return cl.nc.Close()
	}
	cl.srv.lingering.Add(1)
	cl.srv.m.Lingering.Inc()
	cl.timer = time.AfterFunc(closeLinger, func() {
		cl.srv.m.LingerTimeouts.Inc()
		_ = cl.nc.Close()
	})
	cl.mu.Unlock()
	return nil
}

// waitLingering waits until no closed connection lingers, at most closeLinger (each one ends
// by then) or until ctx is done.
func (s *Server) waitLingering(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, closeLinger+time.Second)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond) // lingering ends have no aggregate event; poll the count
	defer t.Stop()
	for s.lingering.Load() > 0 {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}
