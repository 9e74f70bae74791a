package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// The WebSocket transport (docs/client-behaviour.md, "WebSocket transport"): Options.Addr is a
// ws:// or wss:// URL; every message, both ways, is binary and carries exactly one frame with
// its length prefix, the bytes TCP would carry. gobwas/ws (the gateway's library) upgrades the
// connection; the SDK reads and writes the frames itself, so a message's length prefix is
// checked before its payload is read and a failed write leaves the read side alone (R37).

// WebSocketSubprotocol is the subprotocol the client offers; the gateway must select it.
const WebSocketSubprotocol = "tcpgw.v2"

// WebSocketCloseError is a WebSocket connection the gateway (or a proxy) closed with a close
// frame. Codes 1000, 1001 and 1005 (no status) are the end of the stream, like a TCP FIN:
// errors.Is(err, io.EOF) holds for them. The gateway sends its ERROR or GOAWAY before its
// close, and that frame, not the close, is the cause the client reports (R26, R28).
type WebSocketCloseError struct {
	Code   int // 1005 when the close frame carried no status code
	Reason string
}

func (e *WebSocketCloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("client: websocket closed by the gateway: %d", e.Code)
	}
	return fmt.Sprintf("client: websocket closed by the gateway: %d %s", e.Code, e.Reason)
}

// Unwrap is io.EOF for a clean close (1000, 1001, 1005).
func (e *WebSocketCloseError) Unwrap() error {
	switch ws.StatusCode(e.Code) {
	case ws.StatusNormalClosure, ws.StatusGoingAway, ws.StatusNoStatusRcvd:
		return io.EOF
	}
	return nil
}

// WebSocketUpgradeError is an upgrade answered with an HTTP status other than 101 Switching
// Protocols: the gateway refused it (403: an Origin it does not allow, 404: another path) or a
// proxy did. Like any dial failure, it fails Connect and later reconnects retry with backoff.
type WebSocketUpgradeError struct {
	URL    string
	Status int
}

func (e *WebSocketUpgradeError) Error() string {
	return fmt.Sprintf("client: websocket upgrade with %s refused: HTTP %d", e.URL, e.Status)
}

// wsProtocolError is a frame of the gateway's that breaks RFC 6455 or the protocol's mapping
// (a text message, a fragmented one, a masked frame...): the connection ends as a loss (R30),
// closed with code.
type wsProtocolError struct {
	code   ws.StatusCode
	detail string
}

func (e *wsProtocolError) Error() string { return "client: websocket: " + e.detail }

// maxControlPayload is RFC 6455's bound on a control frame's payload (5.5).
const maxControlPayload = 125

// closeWriteTimeout bounds the write of the client's close frame: the close is a courtesy, and
// closing must not wait on a peer that stopped reading.
const closeWriteTimeout = time.Second

// webSocketURL parses addr when it is a ws:// or wss:// URL; (nil, nil) for anything without
// "://", a host:port for TCP.
func webSocketURL(addr string) (*url.URL, error) {
	scheme, _, ok := strings.Cut(addr, "://")
	if !ok {
		return nil, nil
	}
	if !strings.EqualFold(scheme, "ws") && !strings.EqualFold(scheme, "wss") {
		return nil, fmt.Errorf("client: address %q: want host:port, or a ws:// or wss:// URL", addr)
	}
	u, err := url.Parse(addr)
	switch {
	case err != nil:
		return nil, fmt.Errorf("client: address %q: %w", addr, err)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("client: address %q names no host", addr)
	case strings.Contains(addr, "#"):
		return nil, fmt.Errorf("client: address %q: a WebSocket URL has no fragment", addr)
	case u.User != nil:
		return nil, fmt.Errorf("client: address %q: user info in a WebSocket URL is not sent", addr)
	}
	return u, nil // url.Parse lower-cases the scheme
}

// checkTransport refuses options that contradict the address's transport.
func (o *Options) checkTransport() error {
	u, err := webSocketURL(o.Addr)
	if err != nil {
		return err
	}
	if u != nil && u.Scheme == "ws" && o.TLS != nil {
		return fmt.Errorf("client: address %q is plaintext WebSocket but Options.TLS is set: use wss://", o.Addr)
	}
	return nil
}

// serverName is the host the TLS certificate is checked against when Options.TLS names none.
func serverName(addr string) string {
	if u, _ := webSocketURL(addr); u != nil {
		return u.Hostname()
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// dialWebSocket opens the TCP (and for wss://, TLS) connection to u's host and upgrades it,
// offering WebSocketSubprotocol. It closes the connection on failure.
func dialWebSocket(ctx context.Context, o *Options, u *url.URL, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (net.Conn, framer, error) {
	port := u.Port()
	if port == "" {
		port = map[string]string{"ws": "80", "wss": "443"}[u.Scheme]
	}
	nc, err := dial(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, nil, err
	}
	if u.Scheme == "wss" {
		if nc, err = handshakeTLS(ctx, nc, o.Addr, o.TLS); err != nil {
			return nil, nil, err
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	br, hs, err := ws.Dialer{Protocols: []string{WebSocketSubprotocol}}.Upgrade(nc, u)
	if err != nil {
		nc.Close()
		var se ws.StatusError
		if errors.As(err, &se) {
			return nil, nil, &WebSocketUpgradeError{URL: o.Addr, Status: int(se)}
		}
		return nil, nil, fmt.Errorf("client: websocket upgrade with %s: %w", o.Addr, err)
	}
	if hs.Protocol != WebSocketSubprotocol {
		nc.Close()
		return nil, nil, fmt.Errorf("client: websocket upgrade with %s: the gateway selected no subprotocol, want %q", o.Addr, WebSocketSubprotocol)
	}
	if br == nil { // the upgrade read nothing past its answer
		br = bufio.NewReader(nc)
	}
	return nc, &wsFramer{nc: nc, r: br}, nil
}

// wsFramer carries frames as WebSocket messages on an upgraded connection.
type wsFramer struct {
	nc net.Conn
	r  *bufio.Reader // owned by the reader: nc, behind what the upgrade buffered

	wmu       sync.Mutex // serialises frames: messages, pongs, the close
	closeSent bool       // guarded by wmu: nothing is written after a close frame
}

// read returns the protocol frame of the next binary message, answering pings on the way. A
// length prefix above max is FRAME_TOO_LARGE before the payload is read (R3); a message that
// is not exactly one frame is BAD_FRAME, as the gateway treats it. A close frame is echoed
// and ends the stream (*WebSocketCloseError).
func (w *wsFramer) read(max int, buf []byte) (*pb.Frame, []byte, error) {
	for {
		h, err := ws.ReadHeader(w.r)
		if err != nil {
			return nil, buf, err
		}
		switch {
		case h.Masked:
			return nil, buf, &wsProtocolError{ws.StatusProtocolError, "the gateway sent a masked frame"}
		case h.Rsv != 0:
			return nil, buf, &wsProtocolError{ws.StatusProtocolError, "the gateway set reserved bits (no extension was negotiated)"}
		case h.OpCode.IsControl():
			if err := w.control(h); err != nil {
				return nil, buf, err
			}
			continue
		case h.OpCode == ws.OpText:
			return nil, buf, &wsProtocolError{ws.StatusUnsupportedData, "the gateway sent a text message"}
		case h.OpCode == ws.OpContinuation || !h.Fin:
			return nil, buf, &wsProtocolError{ws.StatusUnsupportedData, "the gateway sent a fragmented message"}
		case h.OpCode != ws.OpBinary:
			return nil, buf, &wsProtocolError{ws.StatusProtocolError, fmt.Sprintf("the gateway sent reserved opcode %d", h.OpCode)}
		}
		return w.message(h.Length, max, buf)
	}
}

// message reads a binary message of n bytes as one frame.
func (w *wsFramer) message(n int64, max int, buf []byte) (*pb.Frame, []byte, error) {
	if n >= protocol.HeaderLen {
		head, err := w.r.Peek(protocol.HeaderLen)
		if err != nil {
			return nil, buf, err
		}
		if body := binary.BigEndian.Uint32(head); uint64(body) > uint64(max) {
			return nil, buf, &protocol.FrameError{Code: pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE, Detail: fmt.Sprintf("frame of %d bytes exceeds %d", body, max)}
		}
	}
	if n > int64(protocol.HeaderLen+max) { // its prefix is within the limit: more than one frame
		return nil, buf, &protocol.FrameError{Code: pb.ErrorCode_ERROR_CODE_BAD_FRAME, Detail: fmt.Sprintf("message of %d bytes is more than one frame of at most %d", n, max)}
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	msg := buf[:n]
	if _, err := io.ReadFull(w.r, msg); err != nil {
		return nil, buf, err
	}
	f, err := protocol.DecodeMessage(msg, max)
	return f, buf, err
}

// control handles a control frame: a ping gets its pong, a pong is ignored, a close is echoed
// and ends the stream.
func (w *wsFramer) control(h ws.Header) error {
	if h.Length > maxControlPayload || !h.Fin {
		return &wsProtocolError{ws.StatusProtocolError, "the gateway sent a control frame over 125 bytes or fragmented"}
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(w.r, p); err != nil {
		return err
	}
	switch h.OpCode {
	case ws.OpPing:
		w.wmu.Lock()
		defer w.wmu.Unlock()
		if w.closeSent {
			return nil
		}
		return w.writeLocked(ws.OpPong, p)
	case ws.OpClose:
		if len(p) == 1 {
			return &wsProtocolError{ws.StatusProtocolError, "the gateway sent a close frame of one byte"}
		}
		e := &WebSocketCloseError{Code: int(ws.StatusNoStatusRcvd)}
		echo := []byte{} // no status: an empty close (RFC 6455 5.5.1)
		if len(p) >= 2 {
			code, reason := ws.ParseCloseFrameData(p)
			e.Code, e.Reason = int(code), reason
			echo = ws.NewCloseFrameBody(code, "")
		}
		w.wmu.Lock()
		if !w.closeSent {
			w.closeSent = true
			_ = w.writeLocked(ws.OpClose, echo)
		}
		w.wmu.Unlock()
		return e
	}
	return nil // a pong: the gateway sends none unasked, and none is needed
}

// write sends b, one encoded frame, as one masked binary message. It fails once a close frame
// went out (the gateway's close arrived, or the connection is closing).
func (w *wsFramer) write(b []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closeSent {
		return net.ErrClosed
	}
	return w.writeLocked(ws.OpBinary, b)
}

// writeLocked writes one masked frame with a single write. w.wmu is held.
func (w *wsFramer) writeLocked(op ws.OpCode, p []byte) error {
	h := ws.Header{Fin: true, OpCode: op, Length: int64(len(p)), Masked: true, Mask: ws.NewMask()}
	out := bytes.NewBuffer(make([]byte, 0, ws.MaxHeaderSize+len(p)))
	if err := ws.WriteHeader(out, h); err != nil {
		return err
	}
	start := out.Len()
	out.Write(p)
	ws.Cipher(out.Bytes()[start:], h.Mask, 0) // masks the copy: the caller's p stays as it is
	_, err := w.nc.Write(out.Bytes())
	return err
}

// close sends a close frame whose code says why (unless one went out, or a write holds the
// connection: closing does not wait behind it), then closes the connection.
func (w *wsFramer) close(cause error) {
	if w.wmu.TryLock() {
		if !w.closeSent {
			w.closeSent = true
			code, reason := closeStatus(cause)
			_ = w.nc.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
			_ = w.writeLocked(ws.OpClose, ws.NewCloseFrameBody(code, reason))
		}
		w.wmu.Unlock()
	}
	w.nc.Close()
}

// closeStatus is the close code and reason the client sends when it ends a connection for
// cause, named as the gateway names its own (docs/protocol.md, "WebSocket close codes").
func closeStatus(cause error) (ws.StatusCode, string) {
	var pe *wsProtocolError
	switch fe, ok := protocol.IsFrameError(cause); {
	case ok && fe.Code == pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE:
		return ws.StatusMessageTooBig, protocol.Reason(fe.Code)
	case ok:
		return ws.StatusInvalidFramePayloadData, protocol.Reason(fe.Code)
	case errors.As(cause, &pe):
		return pe.code, "websocket_protocol"
	}
	return ws.StatusNormalClosure, ""
}
