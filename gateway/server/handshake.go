package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/auth"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// maxIDLen bounds client-chosen identifiers so they cannot bloat indexes and headers.
const maxIDLen = 128

// handshake authenticates the client and registers its session. It runs on the connection's
// reader: a slow auth webhook delays this connection only.
func (c *conn) handshake(hs *pb.Handshake) {
	s := c.srv
	if c.addr != nil && !s.addrs.allowHandshake(c.addr, s.now()) {
		s.m.Handshakes.WithLabelValues(refusedAddress).Inc()
		c.refuseLimit(refusedAddress, limitHandshakeRate, pb.ErrorCode_ERROR_CODE_ADDRESS_LIMIT, "this address exceeded its handshake rate")
		return
	}
	if hs.ProtocolVersion < protocol.Version {
		// A newer client is answered with our version (HandshakeAck.protocol_version); an
		// older one cannot be: version 1 did not scope session ids by user.
		s.m.Handshakes.WithLabelValues("unsupported_version").Inc()
		c.fail(pb.ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION, fmt.Sprintf("this gateway speaks protocol_version %d", protocol.Version))
		return
	}
	if !validID(hs.SessionId) || !validID(hs.DeviceId) || len(hs.ClientVersion) > maxIDLen {
		s.m.Handshakes.WithLabelValues("bad_frame").Inc()
		c.fail(pb.ErrorCode_ERROR_CODE_BAD_FRAME, "session_id, device_id and client_version must be printable ASCII of at most 128 bytes")
		return
	}
	if s.establishedFull() {
		c.refuseFull()
		return
	}
	deadline := c.sess.Connected.Add(s.limits.HandshakeTimeout.Duration)
	id, err := c.verify(hs, deadline)
	if err != nil {
		reason := auth.ReasonOf(err)
		s.m.Handshakes.WithLabelValues(reason).Inc()
		c.fail(pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, reason)
		return
	}
	if closing, _ := c.sess.Closing(); closing {
		// The handshake timeout fired while the verifier was working (counted by due), or
		// the peer left.
		return
	}

	if !c.establish() {
		if closing, _ := c.sess.Closing(); !closing {
			c.refuseFull()
		}
		return
	}

	sessionID := hs.SessionId
	if sessionID == "" {
		sessionID = newSessionID()
	}
	c.sess.Establish(session.Identity{
		SessionID:     sessionID,
		UserID:        id.UserID,
		DeviceID:      hs.DeviceId,
		Groups:        id.Groups,
		ClientVersion: hs.ClientVersion,
	})
	c.handshaken = true
	c.tokenExpMs.Store(expiryMs(id.ExpiresAt))
	if s.events != nil {
		c.ev.num = s.connNum.Add(1)
	}

	// The ack is queued before registration so that no push can overtake it; with a downlink
	// both happen inside its Attach, atomically with its delivery and the resume replay.
	attach := func(watermarks []*pb.Position, result *pb.ResumeResult) {
		a := handshakeAcks.Get().(*handshakeAck)
		a.ack = pb.HandshakeAck{
			ProtocolVersion:     protocol.Version,
			SessionId:           sessionID,
			UserId:              id.UserID,
			HeartbeatIntervalMs: uint32(s.limits.HeartbeatInterval.Milliseconds()),
			IdleTimeoutMs:       uint32(s.limits.IdleTimeout.Milliseconds()),
			TokenExpiresAtMs:    c.tokenExpMs.Load(),
			MaxFrameBytes:       uint32(s.limits.MaxFrameBytes),
			ServerId:            s.cfg.ServerID,
			ServerTimeMs:        s.now().UnixMilli(),
			Resume:              result,
			Positions:           watermarks,
		}
		c.send(&a.frame)
		a.release()
		old := s.sessions.Register(c.sess)
		// Announced before the old session is told to go: its DISCONNECTED comes after.
		s.announce(c, old, result)
		if old != nil {
			old.CloseAfter(s.goAwayFrame(pb.GoAway_REASON_REPLACED, 0, ""), session.ReasonReplaced)
		} else {
			s.m.Sessions.Inc()
		}
	}
	if s.downlink != nil {
		if hs.Resume == nil {
			// Only a resume waits (for Kafka): no deadline timer for the others.
			s.downlink.Attach(context.Background(), c.sess, nil, attach)
		} else {
			// Within the handshake deadline: a resume may wait for Kafka to confirm positions
			// this pod has not read yet.
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			s.downlink.Attach(ctx, c.sess, hs.Resume, attach)
			cancel()
		}
	} else {
		attach(nil, nil)
	}
	if closing, _ := c.sess.Closing(); closing && s.sessions.Unregister(c.sess) {
		// Closed (slow consumer, peer gone) between the ack and the registration.
		s.m.Sessions.Dec()
	}
	s.m.Handshakes.WithLabelValues("ok").Inc()
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		// Checked first: the strings boxed for the call are 64 bytes of garbage per
		// handshake even when the line is not written (docs/benchmarks.md, issue 17).
		s.log.Debug("session opened", "session", sessionID, "user", id.UserID, "device", hs.DeviceId, "remote", c.sess.Remote)
	}
}

// handshakeAck is a HANDSHAKE_ACK frame's three messages in one, pooled: send encodes the
// frame at once and keeps only the bytes, so without the pool they are ~230 bytes of garbage
// per handshake (docs/benchmarks.md, issue 17).
type handshakeAck struct {
	frame pb.Frame
	body  pb.Frame_HandshakeAck
	ack   pb.HandshakeAck
}

var handshakeAcks = sync.Pool{New: func() any {
	a := new(handshakeAck)
	a.body.HandshakeAck = &a.ack
	a.frame.Body = &a.body
	return a
}}

// release empties the ack (it refers to the session's strings, the shared watermark list and
// a resume result) and puts it back.
func (a *handshakeAck) release() {
	a.ack.Reset()
	a.frame.Reset()
	a.frame.Body = &a.body
	handshakeAcks.Put(a)
}

// verify checks the handshake's token within the handshake deadline. A local verifier (JWT)
// ignores its context, so it gets none with a deadline: that would be a timer and a context
// allocated and dropped per handshake, garbage that idle connections' RSS carries until the
// next GC (docs/benchmarks.md, "Idle memory per connection toward the floor").
func (c *conn) verify(hs *pb.Handshake, deadline time.Time) (auth.Identity, error) {
	req := auth.Request{Token: hs.Token, DeviceID: hs.DeviceId, ClientAddress: c.sess.Remote}
	if auth.Local(c.srv.verifier) {
		return c.srv.verifier.Verify(context.Background(), req)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return c.srv.verifier.Verify(ctx, req)
}

// refuseFull refuses a handshake because the pod holds limits.maxConnections sessions.
func (c *conn) refuseFull() {
	c.srv.m.Handshakes.WithLabelValues(string(session.ReasonServerFull)).Inc()
	c.refuseLimit(string(session.ReasonServerFull), "", pb.ErrorCode_ERROR_CODE_SERVER_FULL, "the gateway holds its maximum of sessions")
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validID accepts empty or printable ASCII up to maxIDLen: ids end up in HTTP headers, logs
// and map keys.
func validID(s string) bool {
	if len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
