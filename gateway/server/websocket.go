package server

import (
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/gobwas/ws"

	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// The WebSocket path (listen.websocket). Like the TLS path it is served by Go's net package:
// an accept loop, and per connection one reader goroutine that runs the TLS handshake (wss),
// the HTTP upgrade (gobwas/ws: parsed straight off the connection into pooled buffers, no
// net/http server, no buffer kept per connection), then reads WebSocket frames. Each binary
// message carries exactly one length-prefixed protocol frame, which goes into the same conn
// (limits, handshake, requests, drain, resume) as the netpoll path; wsConn is the session's
// transport.

// ServeWebSocket serves the WebSocket listener on ln until Shutdown, next to the clients
// listener Serve serves. Call it after Serve.
func (s *Server) ServeWebSocket(ln net.Listener) error {
	w := s.cfg.Listen.WebSocket
	if w == nil {
		return errors.New("server: listen.websocket is not configured")
	}
	s.mu.Lock()
	s.wsListener = ln
	s.mu.Unlock()
	s.accepting.Add(1)
	go s.acceptLoop(ln, "WebSocket", s.openWebSocket)
	s.log.Info("serving WebSocket clients", "address", ln.Addr().String(), "path", w.Path, "tls", s.wsTLS != nil)
	return nil
}

// WebSocketAddr is the bound WebSocket address, nil when there is none.
func (s *Server) WebSocketAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wsListener == nil {
		return nil
	}
	return s.wsListener.Addr()
}

// openWebSocket admits a connection accepted on the WebSocket listener and starts its reader.
func (s *Server) openWebSocket(raw net.Conn) {
	now := s.now()
	k, t := newWSConn(s, raw, s.wsTLS)
	c, withinPending := s.newConn(raw.RemoteAddr(), t, now)
	k.sess = c.sess
	c.admit(withinPending, now)
	s.streams.Add(1)
	go s.readWebSocket(c, k)
}

// readWebSocket is a WebSocket connection's reader: TLS and upgrade, then messages until the
// connection ends. Returning closes the connection.
func (s *Server) readWebSocket(c *conn, k *wsConn) {
	defer s.streams.Done()
	defer func() {
		k.readerDone()
		c.sess.Abort(session.ReasonClientClosed)
	}()
	if !s.wsOpen(c, k) {
		return
	}
	var head [ws.MaxHeaderSize - 2]byte
	var buf []byte
	for {
		if closing, _ := c.sess.Closing(); closing {
			// Nothing more is read from a closing connection: discard until the peer closes,
			// then let the last frames and the close frame go out.
			_, _ = io.Copy(io.Discard, k.conn)
			k.awaitClose()
			return
		}
		h, err := ws.ReadHeaderBuffer(k.conn, head[:0])
		if err != nil {
			wsPeerGone(c, k)
			return
		}
		if reason := wsRefuse(h, c.frameLimit()); reason != "" {
			s.wsRefused(c, h, reason)
			continue // closing: discarded above
		}
		if h.OpCode.IsControl() {
			if !s.wsControl(c, k, h) {
				return
			}
			continue
		}
		n := int(h.Length)
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		msg := buf[:n]
		if _, err := io.ReadFull(k.conn, msg); err != nil {
			wsPeerGone(c, k)
			return
		}
		ws.Cipher(msg, h.Mask, 0)
		f, err := protocol.DecodeMessage(msg, c.frameLimit())
		if cap(buf) > maxKeptFrameBuffer {
			buf = nil
		}
		if err != nil {
			c.readFailed(err)
			continue
		}
		s.receivedSafe(c, f, n)
	}
}

// wsPeerGone ends a connection whose reads ended (the peer's FIN, a reset, the linger bound):
// closed as client_closed, unless the session is already closing for a reason of its own (a
// handshake timeout, a drain), whose last frames and close frame then still go out.
func wsPeerGone(c *conn, k *wsConn) {
	if closing, _ := c.sess.Closing(); closing {
		k.awaitClose()
		return
	}
	c.sess.Abort(session.ReasonClientClosed)
}

// wsRefuse is the close reason for a frame header the gateway refuses before reading its
// payload, "" for one it reads: a masked, final, binary message of one whole protocol frame
// of at most maxBody bytes (prefix included: protocol.HeaderLen more), or a control frame.
func wsRefuse(h ws.Header, maxBody int) session.CloseReason {
	switch {
	case h.Rsv != 0: // no extension is negotiated that would give them a meaning
		return session.ReasonWebSocketProtocol
	case h.OpCode.IsReserved():
		return session.ReasonWebSocketProtocol
	case !h.Masked:
		return session.ReasonWebSocketUnmasked
	case h.OpCode.IsControl():
		if !h.Fin || h.Length > ws.MaxControlFramePayloadSize {
			return session.ReasonWebSocketProtocol
		}
		return ""
	case h.OpCode == ws.OpText:
		return session.ReasonWebSocketText
	case h.OpCode == ws.OpContinuation || !h.Fin:
		return session.ReasonWebSocketFragmented
	case h.Length > int64(protocol.HeaderLen+maxBody):
		return session.ReasonFrameTooLarge
	}
	return ""
}

// wsRefused closes a connection whose frame header wsRefuse refused. A frame too large gets
// the ERROR FRAME_TOO_LARGE a TCP connection gets; a broken WebSocket mapping gets only the
// close frame, whose code and text say why.
func (s *Server) wsRefused(c *conn, h ws.Header, reason session.CloseReason) {
	if reason == session.ReasonFrameTooLarge {
		c.fail(pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE, "message of "+strconv.FormatInt(h.Length, 10)+" bytes exceeds "+strconv.Itoa(protocol.HeaderLen+c.frameLimit()))
		return
	}
	if c.sess.CloseAfter(nil, reason) {
		s.logSometimes(&s.wsLog, "closing WebSocket connection", "reason", reason, "opcode", int(h.OpCode), "remote", c.sess.Remote)
	}
}

// wsControl handles a control frame (its header checked by wsRefuse): a ping is answered with
// a pong, a pong is ignored, a close is answered with a close and ends the connection. It
// reports whether reading goes on.
func (s *Server) wsControl(c *conn, k *wsConn, h ws.Header) bool {
	var b [ws.MaxControlFramePayloadSize]byte
	p := b[:h.Length]
	if _, err := io.ReadFull(k.conn, p); err != nil {
		wsPeerGone(c, k)
		return false
	}
	ws.Cipher(p, h.Mask, 0)
	switch h.OpCode {
	case ws.OpPing:
		c.sess.Touch(s.now())
		k.control(ws.OpPong, p)
	case ws.OpClose:
		// Echo the client's status code (RFC 6455 5.5.1), then close: the reader discards
		// what follows until the client closes the TCP connection. A payload that is no close
		// body (one byte, a code no endpoint may send such as 1005 or 999, a reason that is
		// not UTF-8: RFC 6455 5.5.1, 7.4) is a protocol error, not echoed (FuzzWebSocket).
		code, reason := ws.ParseCloseFrameData(p)
		if len(p) == 1 || len(p) >= 2 && ws.CheckCloseFrameData(code, reason) != nil {
			s.wsRefused(c, h, session.ReasonWebSocketProtocol)
			return true // closing: discarded
		}
		if len(p) == 0 {
			code = wsNormal
		}
		k.control(ws.OpClose, ws.NewCloseFrameBody(code, ""))
		c.sess.Abort(session.ReasonClientClosed)
	}
	return true
}

// wsOpen runs the TLS handshake (wss) and the upgrade within the connection's handshake
// deadline, and reports whether messages can be read. A connection a limit refused gets no
// TLS handshake (the gateway spends none on it) but, on plaintext, its upgrade, to read the
// ERROR that says why; one refused by the drain gets both, to be told GOAWAY.
func (s *Server) wsOpen(c *conn, k *wsConn) bool {
	closing, reason := c.sess.Closing()
	if closing && reason != session.ReasonDraining && k.tc != nil {
		k.setUp(false)
		return false
	}
	deadline := c.sess.Connected.Add(s.limits.HandshakeTimeout.Duration)
	_ = k.raw.SetDeadline(deadline)
	if k.tc != nil && !s.tlsHandshakeWS(c, k) {
		k.setUp(false)
		return false
	}
	result, early, err := s.upgrade(k.conn)
	if err != nil {
		k.setUp(false)
		reason := session.ReasonWebSocketUpgrade
		switch result {
		case wsTimeout:
			reason = session.ReasonHandshakeTimeout
		case wsClosed:
			reason = session.ReasonClientClosed
		}
		s.setUpFailed(c, reason)
		if result != wsClosed && result != wsTimeout {
			s.logSometimes(&s.wsLog, "WebSocket upgrade refused", "result", result, "err", err, "remote", c.sess.Remote)
		}
		return false
	}
	_ = k.raw.SetDeadline(time.Time{})
	k.setUp(true)
	if early > 0 && c.sess.CloseAfter(nil, session.ReasonWebSocketProtocol) {
		// Frames sent before the 101 were consumed by the upgrade: reading on would parse the
		// stream from wherever they were cut (FuzzWebSocket: a HANDSHAKE sent with the request
		// was lost and the connection waited for the handshake timeout).
		s.logSometimes(&s.wsLog, "closing WebSocket connection", "reason", session.ReasonWebSocketProtocol, "bytesBeforeUpgrade", early, "remote", c.sess.Remote)
	}
	return true
}

// tlsHandshakeWS is the TLS handshake of a wss connection, counted and classified as the
// clients listener's are (tcpgw_tls_handshakes_total).
func (s *Server) tlsHandshakeWS(c *conn, k *wsConn) bool {
	err := k.tc.Handshake()
	result := tlsHandshakeResult(err)
	s.m.TLSHandshakes.WithLabelValues(result).Inc()
	if err != nil {
		s.tlsFailed(c, result, err)
	}
	return err == nil
}
