package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// The TLS path (listen.tls). netpoll has no TLS (cloudwego/netpoll#387), so a TLS listener is
// served by Go's net package and crypto/tls: an accept loop, and per connection one reader
// goroutine that runs the TLS handshake and then reads frames into the same conn (limits,
// handshake, requests, drain) as the netpoll path; stream is the session's transport.

// maxKeptFrameBuffer bounds the frame buffer a TLS connection's reader keeps between frames;
// a larger frame's buffer is dropped after it, so one large frame does not stay allocated
// for the life of an idle connection.
const maxKeptFrameBuffer = 4 << 10

// Results of tcpgw_tls_handshakes_total.
const (
	tlsOK          = "ok"
	tlsTimeout     = "timeout"      // not done within limits.handshakeTimeout
	tlsNotTLS      = "not_tls"      // the first bytes are not a TLS handshake (a plaintext client: told so)
	tlsClosed      = "closed"       // the connection closed during the handshake
	tlsRemoteAlert = "remote_alert" // the client aborted it: typically it does not trust the certificate
	tlsFailed      = "failed"       // anything else: no common version or cipher suite, malformed
)

// tlsHandshakeResult names the outcome of a TLS handshake for the metric and the logs.
func tlsHandshakeResult(err error) string {
	var header tls.RecordHeaderError
	var op *net.OpError
	switch {
	case err == nil:
		return tlsOK
	case errors.Is(err, os.ErrDeadlineExceeded):
		return tlsTimeout
	case errors.As(err, &header):
		return tlsNotTLS
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return tlsClosed
	case errors.As(err, &op) && op.Op == "remote error":
		return tlsRemoteAlert
	default:
		return tlsFailed
	}
}

// acceptLoop accepts connections of the TLS or WebSocket listener (named kind), each handed
// to open, until the listener is closed (stopLoops).
func (s *Server) acceptLoop(ln net.Listener, kind string, open func(net.Conn)) {
	defer s.accepting.Done()
	var backoff time.Duration
	for {
		raw, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does, rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logSometimes(&s.acceptLog, "accepting "+kind+" connections failed", "err", err, "retry_in", backoff.String())
			select {
			case <-time.After(backoff):
				continue
			case <-s.stop:
				return
			}
		}
		backoff = 0
		open(raw)
	}
}

// openStream admits a connection accepted on the TLS listener and starts its reader.
func (s *Server) openStream(raw net.Conn) {
	now := s.now()
	k := newStream(s, raw, s.tlsConfig)
	c, withinPending := s.newConn(raw.RemoteAddr(), k, now)
	c.admit(withinPending, now)
	s.streams.Add(1)
	go s.readStream(c, k)
}

// readStream is a TLS connection's reader: the TLS handshake, then frames until the
// connection ends. Returning closes the connection; it returns when the peer closes, when
// the connection fails, or when the gateway closes it (Close's linger bound).
func (s *Server) readStream(c *conn, k *stream) {
	defer s.streams.Done()
	defer func() {
		k.readerDone()
		c.sess.Abort(session.ReasonClientClosed)
	}()
	if !s.tlsHandshake(c, k) {
		return
	}
	r := bufio.NewReaderSize(k.tc, s.limits.ConnectionBufferBytes)
	var buf []byte
	for {
		if closing, _ := c.sess.Closing(); closing {
			// Nothing more is read from a closing connection: discard until the peer closes,
			// then let the last frames go out.
			_, _ = io.Copy(io.Discard, r)
			k.awaitClose()
			return
		}
		f, size, next, err := protocol.ReadSize(r, c.frameLimit(), buf)
		if err != nil {
			if _, ok := protocol.IsFrameError(err); !ok {
				if closing, _ := c.sess.Closing(); closing {
					k.awaitClose() // closing for a reason of its own: its last frames go out
					return
				}
			}
			c.readFailed(err)
			if _, ok := protocol.IsFrameError(err); !ok {
				return
			}
			continue // closing: discarded above
		}
		if buf = next; cap(buf) > maxKeptFrameBuffer {
			buf = nil
		}
		s.receivedSafe(c, f, size)
	}
}

// tlsFailed closes a connection whose TLS handshake failed with result (tlsHandshakeResult),
// on the TLS listener and on a wss one alike.
func (s *Server) tlsFailed(c *conn, result string, err error) {
	reason := session.ReasonTLSFailed
	switch result {
	case tlsTimeout:
		reason = session.ReasonHandshakeTimeout
	case tlsClosed:
		reason = session.ReasonClientClosed
	}
	s.setUpFailed(c, reason)
	if result != tlsClosed { // closed: port scanners, TCP health checks; counted only
		s.logSometimes(&s.tlsLog, "TLS handshake failed", "result", result, "err", err, "remote", c.sess.Remote)
	}
}

// setUpFailed closes a connection whose set-up (TLS handshake, WebSocket upgrade) failed,
// for reason; one closed for its handshake deadline is counted like a silent plaintext
// client's (due counts those it closes).
func (s *Server) setUpFailed(c *conn, reason session.CloseReason) {
	if c.sess.CloseAfter(nil, reason) && reason == session.ReasonHandshakeTimeout {
		s.m.Handshakes.WithLabelValues(string(session.ReasonHandshakeTimeout)).Inc()
	}
}

// tlsHandshake runs the TLS handshake within the connection's handshake deadline, and reports
// whether frames can be read. A connection a limit refused gets none: the gateway spends no
// handshake on it. One refused by the drain gets one, to be told GOAWAY.
func (s *Server) tlsHandshake(c *conn, k *stream) bool {
	if closing, reason := c.sess.Closing(); closing && reason != session.ReasonDraining {
		k.setUp(false)
		return false
	}
	deadline := c.sess.Connected.Add(s.limits.HandshakeTimeout.Duration)
	_ = k.raw.SetDeadline(deadline)
	err := k.tc.Handshake()
	result := tlsHandshakeResult(err)
	s.m.TLSHandshakes.WithLabelValues(result).Inc()
	if err != nil {
		if result == tlsNotTLS {
			answerPlaintext(k.raw)
		}
		k.setUp(false)
		s.tlsFailed(c, result, err)
		return false
	}
	_ = k.raw.SetDeadline(time.Time{})
	k.setUp(true)
	return true
}

// notTLSFrame is the fatal ERROR a plaintext client of the TLS port gets, in plaintext: it
// reads frames, and a TLS alert or a bare close would tell it nothing.
var notTLSFrame = func() []byte {
	b, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Error{Error: &pb.Error{
		Code: pb.ErrorCode_ERROR_CODE_BAD_FRAME, Fatal: true,
		Message: "this port speaks TLS: connect with TLS (client.Options.TLS, tcpgwctl -tls)",
	}}}, 1<<10)
	if err != nil {
		panic(err) // a constant frame
	}
	return b
}()

// answerPlaintext tells a plaintext client of the TLS port why it is refused, and closes the
// way socket and stream do (FIN, then reading until the client closes, at most closeLinger),
// so that its unread bytes do not turn the close into a reset that loses the ERROR. The
// answer is smaller than what the client sent: nothing to amplify.
func answerPlaintext(raw net.Conn) {
	_ = raw.SetDeadline(time.Now().Add(closeLinger))
	if _, err := raw.Write(notTLSFrame); err != nil {
		return
	}
	if tcp, ok := raw.(interface{ CloseWrite() error }); ok && tcp.CloseWrite() == nil {
		_, _ = io.Copy(io.Discard, raw)
	}
}

// receivedSafe is received with a panic confined to the connection, as onRequest does.
func (s *Server) receivedSafe(c *conn, f *pb.Frame, size int) {
	defer func() {
		if p := recover(); p != nil {
			c.recovered(p)
		}
	}()
	c.received(f, size)
}
