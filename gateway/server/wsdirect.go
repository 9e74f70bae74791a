package server

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
)

// wsDirect is the transport of a plaintext (ws://) WebSocket connection on a *net.TCPConn: a
// wsConn that is also a session.WriterNow, so that the downlink's deliverer writes a batch
// itself, as on the netpoll socket (writenow.go), instead of starting a flush goroutine. wss://
// connections stay plain wsConns: a TLS record cannot be written in part without blocking, so
// their batches go to the flush goroutine.
type wsDirect struct {
	wsConn
	rc syscall.RawConn // raw's: writes on the fd while holding it open
}

// cutPayload in wsConn.cut: WriteNow sent the cut message's whole header and part of its frame
// (possibly none of it). 1 to ws.MaxHeaderSize-5 (at most 9: an unmasked header has 10 bytes)
// in cut are the bytes of its header sent.
const cutPayload = 255

// wsNow is the scratch of one WriteNow: the iovecs (a header and a frame per message) and the
// headers they point into, pooled so that an idle connection holds none and a WriteNow
// allocates nothing. writev is bound once, when the scratch is made: RawConn.Write takes a
// func, which would otherwise be allocated per call.
type wsNow struct {
	iov     [2 * writeNowFrames]syscall.Iovec
	headers [writeNowFrames * (ws.MaxHeaderSize - 4)]byte
	n       int // iovecs filled
	wrote   int // what the writev returned
	err     error
	writev  func(fd uintptr) bool
}

var wsNowPool = sync.Pool{New: func() any {
	w := &wsNow{}
	w.writev = w.writevOnce
	return w
}}

// writevOnce makes one writev of the filled iovecs and reports done whatever it returned:
// RawConn.Write would otherwise wait for the socket to take more, and WriteNow never waits. A
// full socket (EAGAIN) or an interrupted call is 0 bytes written. RawSyscall, as writeNow.
func (w *wsNow) writevOnce(fd uintptr) bool {
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(w.n))
	switch e {
	case 0:
		w.wrote = int(r)
	case syscall.EAGAIN, syscall.EINTR:
	default:
		w.err = e
	}
	return true
}

// WriteNow writes bufs' first writeNowFrames frames, each as one binary message, with one
// writev on the connection's non-blocking socket, and returns the bytes of bufs the kernel
// took (headers are not counted): all of them unless the socket's send buffer is full. The
// session hands what it did not take to its flusher, whose Write sends the rest byte-exactly:
// a message cut in its header or frame is continued where the kernel stopped (cut), and no
// control frame goes in between (control). Like Write, it runs under wmu, after the upgrade
// and before the close frame; before the upgrade, or while wmu is held (a control frame being
// written), it writes nothing and leaves the batch to the flusher, which waits for those.
func (k *wsDirect) WriteNow(bufs [][]byte) (int, error) {
	select {
	case <-k.ready:
	default:
		return 0, nil
	}
	if !k.up {
		return 0, nil
	}
	if !k.open() {
		return 0, errGone
	}
	w := wsNowPool.Get().(*wsNow)
	defer wsNowPool.Put(w)
	frames := bufs[:min(len(bufs), writeNowFrames)]
	h := w.headers[:0]
	for _, b := range frames {
		at := len(h)
		h = appendWSHeader(h, ws.OpBinary, len(b))
		w.iov[w.n].Base = &h[at]
		w.iov[w.n].SetLen(len(h) - at)
		w.n++
		if len(b) > 0 {
			w.iov[w.n].Base = &b[0]
			w.iov[w.n].SetLen(len(b))
			w.n++
		}
	}
	if !k.wmu.TryLock() {
		// A control frame is being written (the reader's pong, Close's close frame), and it
		// may wait for a full socket: the flusher waits for it instead of the deliverer.
		clear(w.iov[:w.n])
		w.n = 0
		return 0, nil
	}
	defer k.wmu.Unlock()
	if k.closeSent {
		clear(w.iov[:w.n])
		w.n = 0
		return 0, errGone
	}
	err := k.rc.Write(w.writev)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The deadline the last flush or control frame set has passed; it bounds their
		// blocking writes, not this one, which never waits.
		_ = k.raw.SetWriteDeadline(time.Time{})
		err = k.rc.Write(w.writev)
	}
	if err == nil {
		err = w.err
	}
	n := 0
	if err == nil {
		n, k.cut = wsTaken(frames, w.wrote)
	}
	clear(w.iov[:w.n]) // keep no frame alive from the pool
	w.n, w.wrote, w.err = 0, 0, nil
	return n, err
}

// wsTaken maps the wrote bytes a writev of frames' messages took (headers included) onto the
// bytes of frames it finished or began, and says what it sent of a message it cut (wsConn.cut).
func wsTaken(frames [][]byte, wrote int) (n int, cut uint8) {
	for _, b := range frames {
		hl := wsHeaderLen(len(b))
		switch {
		case wrote == 0:
			return n, 0
		case wrote < hl:
			return n, uint8(wrote)
		case wrote-hl < len(b):
			return n + wrote - hl, cutPayload
		}
		wrote -= hl + len(b)
		n += len(b)
	}
	return n, 0
}
