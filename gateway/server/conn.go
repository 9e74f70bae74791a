package server

import (
	"context"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/cloudwego/netpoll"
	"golang.org/x/time/rate"

	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// conn is the server's state for one connection, whatever its transport: a netpoll
// connection (socket.go) or a TLS connection (stream.go). On netpoll it is also the context
// that onConnect returns and netpoll hands back to onRequest
// (context.go), so finding it costs no allocation per connection.
type conn struct {
	srv    *Server
	remote net.Addr
	sess   *session.Session

	// Owned by the connection's reader (onRequest runs one at a time per connection; a TLS
	// connection has one reader goroutine).
	handshaken bool
	limiter    *rate.Limiter // nil until the first request or REFRESH (allow)

	// Drain: after GOAWAY the session takes no new requests (they get DRAINING); the requests
	// already in flight still get their responses. away: awayNone, then awayQueuing while
	// the GOAWAY frame is queued, then awayQueued (drain.go).
	away atomic.Uint32
	// admission: the bound the connection counts against (admitPending...; limits.go).
	admission atomic.Uint32
	// addr is the connection's entry in the address table (nil when it has none); set by
	// admit, released by the close hook.
	addr *addressEntry

	// The session's token: its expiry (Unix ms, 0 = none) and whether REFRESH_REQUEST was
	// sent for it. Written by the reader (handshake, REFRESH), read by the wheel (due).
	tokenExpMs   atomic.Int64
	refreshAsked atomic.Bool

	timer session.Timer

	// ev: the connection's session events (events.go).
	ev connEvents
}

// newConn makes the state of a connection just accepted on transport t and counts it against
// limits.maxPendingHandshakes (withinPending: whether it is within the bound). Until the
// caller calls admit, only a close may happen to it.
func (s *Server) newConn(remote net.Addr, t session.Transport, now time.Time) (c *conn, withinPending bool) {
	c = &conn{srv: s, remote: remote}
	c.sess = session.New(t, remote.String(), &s.sessionLimits, s.hooks, now)
	s.conns.Add(1)
	s.m.Connections.Inc()
	withinPending = s.admitPendingConn()
	s.mu.Lock()
	s.live[c.sess] = c
	s.mu.Unlock()
	return c, withinPending
}

// admit turns a new connection away (drain, limits) or schedules its deadlines.
func (c *conn) admit(withinPending bool, now time.Time) {
	s := c.srv
	switch {
	case s.refusing.Load():
		s.m.ConnectionsRefused.WithLabelValues(string(session.ReasonDraining)).Inc()
		c.sess.CloseAfter(s.goAwayFrame(pb.GoAway_REASON_DRAINING, 0, ""), session.ReasonDraining)
	case !withinPending:
		c.refuseLimit(refusedPending, "", pb.ErrorCode_ERROR_CODE_SERVER_FULL, "the gateway holds its maximum of connections awaiting their handshake")
	case !c.admitAddress(now):
		c.refuseLimit(refusedAddress, limitConnections, pb.ErrorCode_ERROR_CODE_ADDRESS_LIMIT, "this address holds its maximum of connections")
	default:
		// One timer serves both deadlines; the first check comes at the earlier of the two so
		// that an idle timeout shorter than the handshake timeout is still honoured.
		c.timer.Due = c.due
		s.wheel.Schedule(&c.timer, now.Add(min(s.limits.HandshakeTimeout.Duration, s.limits.IdleTimeout.Duration)))
	}
}

// onConnect makes the connection's state; the *conn it returns is the context netpoll passes
// to onRequest.
func (s *Server) onConnect(_ context.Context, nc netpoll.Connection) context.Context {
	now := s.now()
	sock := &socket{srv: s, nc: nc, fd: -1}
	if f, ok := nc.(interface{ Fd() int }); ok {
		sock.fd = int32(f.Fd())
	}
	c, withinPending := s.newConn(nc.RemoteAddr(), sock, now)
	// Any close, ours or the peer's, ends in the session's Closed hook exactly once. The
	// peer's hang-up (FIN) ends the session here, not in an OnDisconnect: netpoll runs this
	// once onRequest has returned, so the frames the peer sent before its FIN are handled
	// first and a refusal's ERROR is written (settle), as the TLS reader does.
	_ = nc.AddCloseCallback(func(netpoll.Connection) error {
		sock.goneNow()
		c.sess.Abort(session.ReasonClientClosed)
		return nil
	})
	c.admit(withinPending, now)
	return c
}

func (s *Server) onSessionClosed(sess *session.Session, reason session.CloseReason) {
	s.mu.Lock()
	c := s.live[sess]
	delete(s.live, sess)
	s.mu.Unlock()
	if c != nil {
		c.releaseAdmission()
		c.releaseAddress()
	}
	s.conns.Add(-1)
	s.m.Connections.Dec()
	s.m.Closes.WithLabelValues(string(reason)).Inc()
	if !sess.Established() {
		return
	}
	s.ended(c, reason)
	if s.sessions.Unregister(sess) {
		s.m.Sessions.Dec()
	}
	s.log.Debug("connection closed", "reason", reason, "session", sess.SessionID, "user", sess.UserID, "remote", sess.Remote)
}

func (s *Server) onFlushed(writes, _, bytes int) {
	s.m.Writes.Add(float64(writes))
	s.frames.bytesOut.Add(float64(bytes))
}

// onRequest decodes every complete frame that has arrived. netpoll runs it on a pooled
// goroutine, one at a time per connection; it never waits on a backend.
func (s *Server) onRequest(ctx context.Context, nc netpoll.Connection) (err error) {
	c, ok := ctx.(*conn)
	if !ok {
		return nc.Close()
	}
	defer c.settle()
	defer func() {
		if p := recover(); p != nil {
			c.recovered(p)
		}
	}()
	r := nc.Reader()
	defer r.Release()
	for {
		if closing, _ := c.sess.Closing(); closing {
			// Nothing more is read from a closing connection.
			return r.Skip(r.Len())
		}
		f, size, err := protocol.DecodeSize(r, c.frameLimit())
		if err != nil {
			c.readFailed(err)
			return nil
		}
		if f == nil {
			return nil
		}
		c.received(f, size)
	}
}

// settle waits, at most closeLinger, until a closing session has written its last frames (an
// ERROR for the frame just refused, a GOAWAY). On the peer's hang-up netpoll closes the
// connection as soon as onRequest returns (or at once when none runs): the ERROR for a frame
// followed by a FIN must reach the socket before that, and netpoll's close waits for
// onRequest. The writes go around netpoll, which refuses them after a hang-up
// (socket.writeAfterHangUp).
func (c *conn) settle() {
	if closing, _ := c.sess.Closing(); !closing {
		return
	}
	t := time.NewTimer(closeLinger)
	defer t.Stop()
	select {
	case <-c.sess.Flushed():
	case <-t.C:
	}
}

// frameLimit is the largest frame body the connection accepts now. Until the handshake,
// room for a handshake only: an unauthenticated client cannot make the gateway hold a
// full-size frame.
func (c *conn) frameLimit() int {
	if !c.handshaken {
		return c.srv.limits.MaxHandshakeFrameBytes
	}
	return c.srv.limits.MaxFrameBytes
}

// readFailed ends a connection whose next frame could not be read: a framing violation gets
// its ERROR, anything else (the peer closed, the network failed) ends it silently.
func (c *conn) readFailed(err error) {
	if fe, ok := protocol.IsFrameError(err); ok {
		c.fail(fe.Code, fe.Detail)
		return
	}
	c.sess.Abort(session.ReasonClientClosed)
}

// received handles one frame read from the connection, size bytes on the wire.
func (c *conn) received(f *pb.Frame, size int) {
	s := c.srv
	s.frames.in(protocol.Kind(f), size)
	c.sess.Touch(s.now())
	c.handle(f)
}

// recovered turns a panic while handling a frame into ERROR INTERNAL for this connection
// only.
func (c *conn) recovered(p any) {
	c.srv.log.Error("panic while handling a frame", "panic", p, "remote", c.sess.Remote, "stack", string(debug.Stack()))
	c.fail(pb.ErrorCode_ERROR_CODE_INTERNAL, "internal error")
}

func (c *conn) handle(f *pb.Frame) {
	if !c.handshaken {
		hs := f.GetHandshake()
		if hs == nil {
			c.fail(pb.ErrorCode_ERROR_CODE_HANDSHAKE_REQUIRED, "the first frame must be HANDSHAKE")
			return
		}
		c.handshake(hs)
		return
	}
	switch b := f.Body.(type) {
	case *pb.Frame_Ping:
		c.send(&pb.Frame{Seq: f.Seq, Body: &pb.Frame_Pong{Pong: &pb.Pong{
			ClientTimeMs: b.Ping.ClientTimeMs, ServerTimeMs: c.srv.now().UnixMilli(),
		}}})
	case *pb.Frame_Request:
		c.request(f.Seq, b.Request)
	case *pb.Frame_PushAck:
		c.answer(f.Seq, b.PushAck.MessageId, b.PushAck.Position, false, nil)
	case *pb.Frame_PushReply:
		c.answer(f.Seq, b.PushReply.MessageId, b.PushReply.Position, true, b.PushReply.Payload)
	case *pb.Frame_Refresh:
		c.refresh(f.Seq, b.Refresh)
	case *pb.Frame_Handshake:
		c.fail(pb.ErrorCode_ERROR_CODE_HANDSHAKE_REQUIRED, "second HANDSHAKE on one connection")
	default:
		c.fail(pb.ErrorCode_ERROR_CODE_BAD_FRAME, "clients may not send "+protocol.Kind(f))
	}
}

// due is the connection's deadline check, called by the wheel: before the handshake it
// enforces the handshake timeout, after it the idle timeout.
func (c *conn) due(now time.Time) time.Time {
	if closing, _ := c.sess.Closing(); closing {
		return time.Time{}
	}
	s := c.srv
	if !c.sess.Established() {
		if now.Sub(c.sess.Connected) < s.limits.HandshakeTimeout.Duration {
			return c.sess.Connected.Add(s.limits.HandshakeTimeout.Duration)
		}
		// Counted here, the only place a handshake times out: a silent client never reaches
		// handshake(), and one whose verifier outlives the deadline is not counted again there.
		s.m.Handshakes.WithLabelValues("handshake_timeout").Inc()
		c.fail(pb.ErrorCode_ERROR_CODE_HANDSHAKE_TIMEOUT, "no handshake within "+s.limits.HandshakeTimeout.String())
		return time.Time{}
	}
	deadline := c.sess.LastSeen().Add(s.limits.IdleTimeout.Duration)
	if !now.Before(deadline) {
		c.fail(pb.ErrorCode_ERROR_CODE_IDLE_TIMEOUT, "nothing received for "+s.limits.IdleTimeout.String())
		return time.Time{}
	}
	next, open := c.tokenDue(now)
	if !open {
		return time.Time{}
	}
	if !next.IsZero() && next.Before(deadline) {
		return next
	}
	return deadline
}

// fail tells the client why with a fatal ERROR frame, then closes the connection.
func (c *conn) fail(code pb.ErrorCode, detail string) {
	if c.closeWithError(code, detail) {
		c.srv.log.Info("closing connection", "reason", session.ReasonForCode(code), "detail", detail, "remote", c.sess.Remote)
	}
}

// closeWithError is fail without the log line, for refusals an attacker can repeat at will
// (they are logged at a bounded rate instead). It reports whether this call closed it.
func (c *conn) closeWithError(code pb.ErrorCode, detail string) bool {
	f := &pb.Frame{Body: &pb.Frame_Error{Error: &pb.Error{Code: code, Message: detail, Fatal: true}}}
	b, err := protocol.Append(nil, f, c.srv.limits.MaxFrameBytes)
	if err != nil {
		b = nil
	}
	if !c.sess.CloseAfter(b, session.ReasonForCode(code)) {
		return false
	}
	c.srv.frames.out("error")
	return true
}

// send encodes f and queues it. A full queue closes the session as a slow consumer.
func (c *conn) send(f *pb.Frame) {
	c.srv.sendTo(c.sess, f)
}
