package server

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/tcpgateway/tcpgateway/gateway/session"
)

// errNoUpgrade is a write to a WebSocket connection whose upgrade failed or was never made:
// nothing can be sent on it.
var errNoUpgrade = errors.New("no WebSocket upgrade")

// wsConn is a session's transport on a WebSocket connection (listen.websocket): every frame
// the session writes goes out as one binary WebSocket message, unmasked (RFC 6455: servers
// never mask). Its connection's reader goroutine (websocket.go) runs the TLS handshake (wss)
// and the upgrade and reports their end (linger.setUp); writes wait for it. The reader owns
// the end of the connection (linger).
type wsConn struct {
	linger           // the set-up is the upgrade; the half-close, the close frame then FIN
	conn   net.Conn  // what the WebSocket is spoken on: raw, or tc
	tc     *tls.Conn // nil without TLS
	sess   *session.Session

	wmu       sync.Mutex    // serialises writes: WriteNow, the flusher's messages, the reader's pongs, the close frame
	closeSent bool          // guarded by wmu: a close frame went out (or was given up, see control); nothing follows it
	cut       uint8         // guarded by wmu: what WriteNow sent of a message it cut (wsdirect.go), 0 for none
	cutDone   chan struct{} // guarded by wmu: made by a control frame waiting for the cut message's end, closed by it
}

// newWSConn makes the transport of a connection accepted on the WebSocket listener: a
// wsDirect, which session.Wake writes on directly, for plaintext on a socket that gives its fd
// (a *net.TCPConn), a wsConn otherwise.
func newWSConn(s *Server, raw net.Conn, cfg *tls.Config) (*wsConn, session.Transport) {
	if sc, ok := raw.(syscall.Conn); ok && cfg == nil {
		if rc, err := sc.SyscallConn(); err == nil {
			d := &wsDirect{rc: rc}
			d.wsConn.init(s, raw, nil)
			return &d.wsConn, d
		}
	}
	k := &wsConn{}
	k.init(s, raw, cfg)
	return k, k
}

func (k *wsConn) init(s *Server, raw net.Conn, cfg *tls.Config) {
	k.linger, k.conn = newLinger(s, raw), raw
	if cfg != nil {
		k.tc = tls.Server(raw, cfg)
		k.conn = k.tc
	}
}

// wsHeaderLen is the size of an unmasked frame header for a payload of n bytes.
func wsHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	default:
		return 10
	}
}

// appendWSHeader appends the header of a final, unmasked frame of opcode op with a payload of
// n bytes (RFC 6455 5.2).
func appendWSHeader(dst []byte, op ws.OpCode, n int) []byte {
	b0 := 0x80 | byte(op)
	switch {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, b0, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, b0, 127), uint64(n))
	}
}

// wsWrite is the scratch of one Write: the frame headers and the buffers of the writev.
type wsWrite struct {
	headers []byte
	bufs    net.Buffers
}

// wsWritePool holds the scratch between writes, so that an idle connection holds none.
var wsWritePool = sync.Pool{New: func() any { return &wsWrite{} }}

// maxPooledWSBuffers bounds the scratch kept in wsWritePool.
const maxPooledWSBuffers = 1024

// Write sends every frame as one binary message. Only the session's flusher calls it. On
// plaintext, headers and frames go out in one writev, the frames uncopied; with TLS they are
// joined into one buffer for one TLS write, as stream does. A frame queued before the upgrade
// ended (a refusal, a drain GOAWAY) waits for it: the upgrade has the connection's handshake
// deadline, and Close ends it at once. After a WriteNow that cut a message (plaintext only,
// wsdirect.go), bufs[0] is that message's rest: the part of its header WriteNow did not send
// goes first, then the rest of the frame.
func (k *wsConn) Write(bufs [][]byte) error {
	if !k.waitUp() {
		return errNoUpgrade
	}
	if !k.open() {
		return errGone
	}
	w := wsWritePool.Get().(*wsWrite)
	defer func() {
		if cap(w.bufs) <= maxPooledWSBuffers {
			clear(w.bufs[:cap(w.bufs)]) // keep no frame alive from the pool
			w.headers, w.bufs = w.headers[:0], w.bufs[:0]
			wsWritePool.Put(w)
		}
	}()
	n := 0
	for _, b := range bufs {
		n += len(b)
		w.headers = appendWSHeader(w.headers, ws.OpBinary, len(b))
	}
	k.wmu.Lock()
	defer k.wmu.Unlock()
	if k.closeSent {
		return errGone
	}
	_ = k.raw.SetWriteDeadline(time.Now().Add(writeTimeout))
	if k.tc != nil {
		return k.writeJoined(w.headers, bufs, n)
	}
	h := w.headers
	for i, b := range bufs {
		hl := wsHeaderLen(len(b))
		head := h[:hl]
		h = h[hl:]
		if i == 0 {
			head = head[min(int(k.cut), hl):] // cutPayload (255): the whole header went out
		}
		w.bufs = append(w.bufs, head, b)
	}
	v := w.bufs // WriteTo consumes the slice it is called on
	_, err := v.WriteTo(k.raw)
	if err == nil {
		k.uncutLocked()
	}
	return err
}

// writeJoined writes headers and frames, interleaved, in one TLS write. Called under wmu.
func (k *wsConn) writeJoined(headers []byte, bufs [][]byte, n int) error {
	n += len(headers)
	var joined []byte
	if n <= maxCoalesceBytes {
		p := coalescePool.Get().(*[]byte)
		defer coalescePool.Put(p)
		joined = (*p)[:0]
		defer func() { *p = joined[:0] }()
	} else {
		joined = make([]byte, 0, n)
	}
	h := headers
	for _, b := range bufs {
		hl := wsHeaderLen(len(b))
		joined = append(append(joined, h[:hl]...), b...)
		h = h[hl:]
	}
	_, err := k.tc.Write(joined)
	return err
}

// uncutLocked records that no message is cut any more (its rest went out, or never will: a
// close frame took its place) and releases a control frame waiting for it. Called under wmu.
func (k *wsConn) uncutLocked() {
	k.cut = 0
	if k.cutDone != nil {
		close(k.cutDone)
		k.cutDone = nil
	}
}

// control writes a control frame (pong, close) from the reader or from Close; a close frame
// is the last thing written. It reports whether the frame was written.
//
// A control frame cannot go between the two parts of a message WriteNow cut (wsdirect.go):
// a pong waits until the flusher has written the rest, as it waits for any write in
// progress. A close frame does not wait: it comes from Close (the session ended: its flusher
// writes nothing more, Write fails once closed) or answers the client's close frame (nothing
// follows it, Write fails once closeSent), so the rest will not come; the close frame is given
// up and the connection ends as for a peer that stopped reading, a cut message and no close
// frame. A drain's close is not that case: the flusher writes the rest and the GOAWAY before
// the session ends.
func (k *wsConn) control(op ws.OpCode, payload []byte) bool {
	k.wmu.Lock()
	defer k.wmu.Unlock()
	for k.cut != 0 && !k.closeSent && op != ws.OpClose {
		if k.cutDone == nil {
			k.cutDone = make(chan struct{})
		}
		done := k.cutDone
		k.wmu.Unlock()
		<-done
		k.wmu.Lock()
	}
	if k.closeSent {
		return false
	}
	if op == ws.OpClose {
		k.closeSent = true
		if k.cut != 0 {
			k.uncutLocked() // releases a waiting pong, which finds closeSent
			return false
		}
	}
	var b [ws.MaxHeaderSize + ws.MaxControlFramePayloadSize]byte
	frame := append(appendWSHeader(b[:0], op, len(payload)), payload...)
	_ = k.raw.SetWriteDeadline(time.Now().Add(closeLinger))
	_, err := k.conn.Write(frame)
	return err == nil
}

// Close ends the connection the way a WebSocket server does: a close frame with the code of
// the session's close reason (wsclose.go), then, as socket and stream do, a FIN and reading
// until the peer closes or closeLinger passes. Before or without an upgrade there is nothing
// to protect: the connection is closed at once.
func (k *wsConn) Close() error {
	return k.close(k.halfClose)
}

// halfClose sends the close frame, close_notify with TLS, then FIN. The close frame waits for
// a write in progress (wmu), so it ignores whether one is.
func (k *wsConn) halfClose(bool) {
	_, reason := k.sess.Closing()
	k.control(ws.OpClose, wsCloseBody(reason))
	if k.tc != nil {
		k.wmu.Lock()
		_ = k.tc.CloseWrite()
		k.wmu.Unlock()
	}
	k.fin()
}
