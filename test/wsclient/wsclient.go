// Package wsclient dials the gateway's WebSocket listener (listen.websocket) for Go tests and
// benchmarks. A Conn is a net.Conn that carries the protocol's byte stream: what is written
// goes out as one masked binary message per length-prefixed frame, and what is read is the
// concatenation of the gateway's binary messages, each one whole frame. So the Go SDK speaks
// WebSocket unchanged, through client.Options.DialContext (DialContext below).
package wsclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/gobwas/ws"
)

// Subprotocol is the one the gateway selects when offered.
const Subprotocol = "tcpgw.v2"

// Options tune Dial.
type Options struct {
	// Origin, when set, is sent as the Origin header, as a browser does.
	Origin string
	// Protocols offered (Sec-WebSocket-Protocol). Default none.
	Protocols []string
	// NetDial replaces the dialer of the TCP connection (a source address, say).
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS configures wss:// URLs (nil: the system roots).
	TLS *tls.Config
}

// Conn is a WebSocket connection presented as the protocol's byte stream.
type Conn struct {
	net.Conn
	src *bufio.Reader // the connection, behind what the upgrade buffered

	// Owned by the reader.
	left      int64         // payload bytes of the current message not read yet
	closeCode ws.StatusCode // the gateway's close frame, once read
	closeText string
	head      [12]byte // header scratch

	wmu     sync.Mutex // serialises writes: messages, pongs, close
	pending []byte     // guarded by wmu: written bytes that do not make a whole frame yet
	closed  bool       // guarded by wmu: a close frame went out

	// Protocol is the subprotocol the gateway selected ("" for none).
	Protocol string
}

// Dial opens a WebSocket connection to url (ws://host:port/path, or wss://).
func Dial(ctx context.Context, url string, o Options) (*Conn, error) {
	d := ws.Dialer{Protocols: o.Protocols, NetDial: o.NetDial, TLSConfig: o.TLS}
	if o.Origin != "" {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Origin": []string{o.Origin}})
	}
	nc, br, hs, err := d.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	// Buffered: a message is a header and a payload, two reads of the connection otherwise.
	var src io.Reader = nc
	if br != nil { // what the upgrade's reader buffered past the response comes first
		src = io.MultiReader(br, nc)
	}
	return &Conn{Conn: nc, src: bufio.NewReaderSize(src, 4<<10), Protocol: hs.Protocol}, nil
}

// DialContext is a client.Options.DialContext that dials url whatever address it is given.
func DialContext(url string, o Options) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, err := Dial(ctx, url, o)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// Read reads the payloads of the gateway's binary messages, in order. Pings are answered;
// a close frame ends the stream (io.EOF; CloseStatus tells its code and reason).
func (c *Conn) Read(p []byte) (int, error) {
	for c.left == 0 {
		h, err := ws.ReadHeaderBuffer(c.src, c.head[:0])
		if err != nil {
			return 0, err
		}
		if h.Masked {
			return 0, errors.New("wsclient: the gateway sent a masked frame")
		}
		if h.OpCode.IsControl() {
			if err := c.control(h); err != nil {
				return 0, err
			}
			continue
		}
		if h.OpCode != ws.OpBinary || !h.Fin {
			return 0, fmt.Errorf("wsclient: the gateway sent opcode %d, fin %v: want whole binary messages", h.OpCode, h.Fin)
		}
		c.left = h.Length
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.src.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *Conn) control(h ws.Header) error {
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c.src, p); err != nil {
		return err
	}
	switch h.OpCode {
	case ws.OpPing:
		return c.writeFrame(ws.NewPongFrame(p))
	case ws.OpClose:
		code, reason := ws.ParseCloseFrameData(p)
		c.closeCode, c.closeText = code, reason
		_ = c.writeFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(code, "")))
		return io.EOF
	}
	return nil
}

// CloseStatus is the code and reason of the gateway's close frame, once Read returned io.EOF
// for it (0 and "" before).
func (c *Conn) CloseStatus() (ws.StatusCode, string) {
	return c.closeCode, c.closeText
}

// Write sends every whole frame in p (with what earlier writes left) as one binary message
// each; the bytes of an unfinished frame wait for the next write.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.pending = append(c.pending, p...)
	for len(c.pending) >= 4 {
		n := 4 + int(binary.BigEndian.Uint32(c.pending))
		if len(c.pending) < n {
			break
		}
		if err := ws.WriteFrame(c.Conn, ws.MaskFrame(ws.NewBinaryFrame(c.pending[:n]))); err != nil {
			return 0, err
		}
		c.pending = c.pending[n:]
	}
	if len(c.pending) == 0 {
		c.pending = nil
	}
	return len(p), nil
}

// WriteFrame sends a frame as it is given (masked as given): for tests of what the SDK would
// never send.
func (c *Conn) WriteFrame(f ws.Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return ws.WriteFrame(c.Conn, f)
}

func (c *Conn) writeFrame(f ws.Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.closed = f.Header.OpCode == ws.OpClose
	return ws.WriteFrame(c.Conn, ws.MaskFrame(f))
}

// Close sends a close frame (1000) and closes the connection.
func (c *Conn) Close() error {
	_ = c.writeFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))
	return c.Conn.Close()
}
