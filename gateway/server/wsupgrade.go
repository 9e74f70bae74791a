package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// maxUpgradeBytes bounds the HTTP upgrade request (request line and headers): a browser's,
// cookies of the site included, fits; a larger one gets 431 and a close
// (tcpgw_websocket_upgrades_total{result="too_large"}). Time is bounded by
// limits.handshakeTimeout, which counts from the accept.
const maxUpgradeBytes = 16 << 10

// wsSubprotocol is selected when the client offers it (Sec-WebSocket-Protocol); none is
// required.
const wsSubprotocol = "tcpgw.v2"

// Results of tcpgw_websocket_upgrades_total.
const (
	wsOK              = "ok"
	wsTimeout         = "timeout"          // not upgraded within limits.handshakeTimeout
	wsClosed          = "closed"           // the connection closed during the upgrade
	wsNotWebSocket    = "not_websocket"    // an HTTP request that is no WebSocket upgrade: 400 (405 for a method other than GET)
	wsNotFound        = "not_found"        // an upgrade of another path: 404
	wsForbiddenOrigin = "forbidden_origin" // an Origin not in allowedOrigins: 403
	wsTooLarge        = "too_large"        // the request exceeds maxUpgradeBytes: 431
	wsFailed          = "failed"           // malformed HTTP: 400
)

var (
	errUpgradeTooLarge = errors.New("upgrade request too large")
	errForbiddenOrigin = ws.RejectConnectionError(ws.RejectionStatus(http.StatusForbidden),
		ws.RejectionReason("this Origin may not connect (listen.websocket.allowedOrigins)"))
	// The fixed answers written when gobwas/ws wrote none: it answers every rejection it makes
	// once it has parsed the request line, not a line that is no HTTP request line.
	answerTooLarge = []byte("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	answerNotHTTP  = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
)

// wsUpgrader is the server's upgrader for listen.websocket: one per server, its callbacks
// keep no state per connection.
func newWSUpgrader(w *config.ListenWebSocket) (ws.Upgrader, error) {
	notFound := ws.RejectConnectionError(ws.RejectionStatus(http.StatusNotFound),
		ws.RejectionReason("this port serves WebSocket at "+w.Path))
	origins := make([][]byte, len(w.AllowedOrigins))
	for i, o := range w.AllowedOrigins {
		if err := config.CheckOrigin(o); err != nil {
			return ws.Upgrader{}, err
		}
		origins[i] = []byte(strings.ToLower(o))
	}
	path := []byte(w.Path)
	return ws.Upgrader{
		ReadBufferSize: 1 << 10, // pooled, and a longer line is read in steps (bounded by maxUpgradeBytes)
		Protocol:       func(p []byte) bool { return string(p) == wsSubprotocol },
		OnRequest: func(uri []byte) error {
			if p, _, _ := bytes.Cut(uri, []byte{'?'}); !bytes.Equal(p, path) {
				return notFound
			}
			return nil
		},
		OnHeader: func(key, value []byte) error {
			if string(key) == "Origin" && !originAllowed(origins, value) {
				return errForbiddenOrigin
			}
			return nil
		},
	}, nil
}

// originAllowed reports whether an upgrade with this Origin header may proceed: every origin
// when the list is empty, else one of the list (lower-cased), compared without regard to case.
func originAllowed(allowed [][]byte, origin []byte) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		if bytes.EqualFold(a, origin) {
			return true
		}
	}
	return false
}

// upgradeConn is what the upgrader reads and writes: reads bounded by maxUpgradeBytes and
// followed to the request's end, writes counted (to tell whether an answer was written).
type upgradeConn struct {
	conn    net.Conn
	left    int
	written int
	tail    uint32 // the last bytes read, to find the blank line that ends the request
	ended   bool   // the blank line was read
	past    int    // bytes read after it
}

func (u *upgradeConn) Read(p []byte) (int, error) {
	if u.left <= 0 {
		return 0, errUpgradeTooLarge
	}
	if len(p) > u.left {
		p = p[:u.left]
	}
	n, err := u.conn.Read(p)
	u.left -= n
	u.follow(p[:n])
	return n, err
}

// follow finds the request's end in the bytes read (an empty line: CRLF or, as gobwas/ws
// accepts, a bare LF) and counts the bytes after it. The upgrader reads through a pooled
// buffer that it drops when it returns, so those bytes are lost to the WebSocket reader.
func (u *upgradeConn) follow(b []byte) {
	if u.ended {
		u.past += len(b)
		return
	}
	for i, c := range b {
		u.tail = u.tail<<8 | uint32(c)
		if u.tail&0xffff == 0x0a0a || u.tail&0xffffff == 0x0a0d0a {
			u.ended = true
			u.past = len(b) - i - 1
			return
		}
	}
}

func (u *upgradeConn) Write(p []byte) (int, error) {
	n, err := u.conn.Write(p)
	u.written += n
	return n, err
}

// upgrade reads the HTTP upgrade request from conn and answers it: 101 (the upgrade), or an
// HTTP error, after which the connection is half-closed and drained as answerPlaintext does,
// so that the answer is not lost to a reset. It counts and returns the result, and after a
// 101 the number of bytes the client sent after its request, before the answer: RFC 6455
// 4.1 forbids them, and the upgrader has consumed them.
func (s *Server) upgrade(conn net.Conn) (string, int, error) {
	u := &upgradeConn{conn: conn, left: maxUpgradeBytes}
	_, err := s.wsUpgrader.Upgrade(u)
	result := upgradeResult(err)
	s.m.WebSocketUpgrades.WithLabelValues(result).Inc()
	if err == nil {
		return result, u.past, nil
	}
	if result == wsClosed || result == wsTimeout {
		return result, 0, err
	}
	if u.written == 0 {
		answer := answerNotHTTP
		if result == wsTooLarge {
			answer = answerTooLarge
		}
		_, _ = conn.Write(answer)
	}
	lingerAfterAnswer(conn)
	return result, 0, err
}

// upgradeResult names the outcome of an upgrade for the metric and the logs.
func upgradeResult(err error) string {
	var rejected *ws.ConnectionRejectedError
	switch {
	case err == nil:
		return wsOK
	case errors.Is(err, errUpgradeTooLarge):
		return wsTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return wsTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return wsClosed
	case err == errForbiddenOrigin:
		return wsForbiddenOrigin
	case errors.As(err, &rejected) && rejected.StatusCode() == http.StatusNotFound:
		return wsNotFound
	case errors.Is(err, ws.ErrMalformedRequest) || !errors.As(err, &rejected):
		return wsFailed
	default:
		return wsNotWebSocket
	}
}

// lingerAfterAnswer half-closes conn after an HTTP error answer and reads until the client
// closes, at most closeLinger: unread request bytes would otherwise turn the close into a
// reset that can lose the answer.
func lingerAfterAnswer(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(closeLinger))
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := conn.(closeWriter); ok && cw.CloseWrite() == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(conn, maxUpgradeBytes))
	}
}
