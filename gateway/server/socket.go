package server

import (
	"context"
	"errors"
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

// errGone is a write to a connection netpoll already closed.
var errGone = errors.New("connection closed")

// socket is a session's transport on its netpoll connection: it writes the session's frames
// and closes the connection without a reset (see closeLinger), and it never touches the
// connection once netpoll closed it. netpoll frees a closed connection's buffers and its fd
// may then belong to another connection; a write racing with the peer's close would crash the
// process (found by FuzzHandshake), a shutdown would hit another client.
type socket struct {
	srv *Server
	nc  netpoll.Connection

	mu    sync.Mutex  // guards gone, timer, appending to the connection's write buffer, and WriteNow's use of fd
	gone  bool        // netpoll closed the connection
	fd    int32       // the connection's file descriptor, -1 when netpoll gives none; in gone's padding
	timer *time.Timer // while lingering: closes the connection at the bound
}

// WriteNow writes bufs (at most writeNowFrames of them) to the connection's socket with one
// writev system call, which never waits (the socket is non-blocking), and returns the bytes
// the kernel took: all of them unless the socket's send buffer is full. It bypasses
// netpoll's write buffer, which is empty whenever the session calls it (every Write has
// returned, and netpoll's Flush returns only once its buffer is sent); what it does not take
// the session hands to its flusher, which writes it with Write. The syscall runs under mu, so
// the close callback (goneNow), and with it netpoll's closing of the fd, waits for it: the fd
// is never one that another connection reuses.
func (k *socket) WriteNow(bufs [][]byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gone {
		return 0, errGone
	}
	if k.fd < 0 {
		return 0, nil // everything goes through netpoll
	}
	return writeNow(int(k.fd), bufs)
}

// directFrames is the most frames a Write hands to netpoll without copying: netpoll gives one
// sendmsg at most 32 buffers (its barriercap) and leaves the rest of a flush to its poller.
const directFrames = 32

// Write appends every frame to the connection's write buffer and sends them with one Flush
// (one writev). Only the session's flusher calls it.
//
// Up to directFrames frames are linked into the buffer as they are (WriteDirect), not copied:
// netpoll then keeps no buffer of its own once they are sent, only a reference to the last
// frame until the next write, so an idle connection holds its last frame (about 90 bytes for a
// HANDSHAKE_ACK) instead of a buffer of limits.connectionBufferBytes. Frames are never modified once queued
// (a broadcast's is shared by every session), which is what sending them uncopied requires.
// More frames are copied into netpoll's buffer (WriteBinary), merging them into few buffers
// for the sendmsg; that buffer is given back at the next direct write.
func (k *socket) Write(bufs [][]byte) error {
	k.mu.Lock()
	if k.gone {
		k.mu.Unlock()
		return errGone
	}
	w := k.nc.Writer()
	for _, b := range bufs {
		var err error
		if len(bufs) <= directFrames {
			err = w.WriteDirect(b, 0)
		} else {
			_, err = w.WriteBinary(b)
		}
		if err != nil {
			k.mu.Unlock()
			return err
		}
	}
	k.mu.Unlock()
	// Flush may block on a slow peer, so it runs unlocked: netpoll itself keeps a Flush and
	// the freeing of the buffers apart (its close callback waits for the Flush to end and
	// later Flushes fail).
	if err := w.Flush(); err != nil {
		return k.writeAfterHangUp(bufs, err)
	}
	return nil
}

// errHungUpFull is a write after the peer's hang-up that the socket's send buffer could not
// take at once: netpoll no longer waits for the socket to drain.
var errHungUpFull = errors.New("peer hung up and the socket is full")

// writeAfterHangUp retries a Write whose Flush failed (err) because netpoll saw the peer's
// hang-up (a FIN after a frame the gateway refuses): netpoll then refuses every Flush, before
// sending anything, but keeps the fd open until its close callback (goneNow), which onRequest
// delays until the session's last frames are written (conn.settle). The frames go out with
// writev on the fd under mu, as WriteNow's do, so an ERROR still reaches the client. A Flush
// that failed otherwise, or after sending part of the frames, is not retried.
func (k *socket) writeAfterHangUp(bufs [][]byte, err error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	// MallocLen counts what was appended and never handed to netpoll's sending: this Write's
	// frames (and those of earlier refused Writes, written here) when the Flush was refused
	// before sending, 0 once it sent anything.
	if k.gone || k.fd < 0 || k.nc.IsActive() || k.nc.Writer().MallocLen() == 0 {
		return err
	}
	for len(bufs) > 0 {
		m := min(len(bufs), writeNowFrames)
		want := 0
		for _, b := range bufs[:m] {
			want += len(b)
		}
		n, werr := writeNow(int(k.fd), bufs[:m])
		if werr != nil {
			return werr
		}
		if n < want {
			return errHungUpFull
		}
		bufs = bufs[m:]
	}
	return nil
}

// goneNow is called from the connection's close callback, before netpoll closes the fd and
// frees the buffers (its own callback runs last): from then on the connection is not touched.
func (k *socket) goneNow() {
	k.mu.Lock()
	k.gone = true
	t := k.timer
	k.timer = nil
	k.mu.Unlock()
	k.srv.endLinger(t)
}

// Close half-closes the connection and lets it linger; a connection that cannot be
// half-closed is closed at once.
func (k *socket) Close() error {
	k.mu.Lock()
	if k.gone || k.timer != nil {
		k.mu.Unlock()
		return nil // closed, or already lingering
	}
	fd, ok := k.nc.(interface{ Fd() int })
	if !ok || syscall.Shutdown(fd.Fd(), syscall.SHUT_WR) != nil {
		k.mu.Unlock()
		return k.nc.Close()
	}
	k.timer = k.srv.startLinger(k.nc.Close)
	k.mu.Unlock()
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
