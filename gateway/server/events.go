package server

import (
	"sync"

	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// SessionEvents hears of each session's life for backends (gateway/events publishes it to
// Kafka). Every method is called on the data plane and must not block.
type SessionEvents interface {
	// Connected: a handshake completed; result is the resume's, nil when none was asked.
	Connected(s *session.Session, conn uint64, result *pb.ResumeResult)
	// Replaced: old (connection oldConn) was taken over by the connection numbered by.
	Replaced(old *session.Session, oldConn, by uint64)
	// Disconnected: an announced connection ended.
	Disconnected(s *session.Session, conn uint64, reason session.CloseReason)
}

// connEvents keeps one connection's events in order: its CONNECTED (with the REPLACED it
// caused) before its DISCONNECTED, and no DISCONNECTED for a connection never announced —
// nor an announcement after its close (a session closed between its ack and its
// registration).
type connEvents struct {
	num       uint64 // the server's number for the connection (set by the handshake)
	mu        sync.Mutex
	announced bool
	ended     bool
}

// announce reports c's handshake, and the session it replaced (old, may be nil).
func (s *Server) announce(c *conn, old *session.Session, result *pb.ResumeResult) {
	if s.events == nil {
		return
	}
	var oldNum uint64
	if old != nil {
		s.mu.Lock()
		if oc := s.live[old]; oc != nil {
			oldNum = oc.ev.num
		}
		s.mu.Unlock()
	}
	c.ev.mu.Lock()
	defer c.ev.mu.Unlock()
	if c.ev.ended {
		return
	}
	c.ev.announced = true
	if old != nil {
		s.events.Replaced(old, oldNum, c.ev.num)
	}
	s.events.Connected(c.sess, c.ev.num, result)
}

// ended reports c's close, if its handshake was announced.
func (s *Server) ended(c *conn, reason session.CloseReason) {
	if s.events == nil || c == nil {
		return
	}
	c.ev.mu.Lock()
	defer c.ev.mu.Unlock()
	if c.ev.ended {
		return
	}
	c.ev.ended = true
	if c.ev.announced {
		s.events.Disconnected(c.sess, c.ev.num, reason)
	}
}
