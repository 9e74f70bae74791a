package hostile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// ReadTimeout bounds Conn's reads unless a call says otherwise: long enough for a loaded
// 2-core machine, short enough that a missing frame fails fast.
const ReadTimeout = 10 * time.Second

// maxReadBody is the largest frame body Conn accepts from the gateway.
const maxReadBody = 1 << 24

// Conn is a raw protocol client: a TCP connection that writes whatever the test asks and
// reads frames with a deadline. Its methods fail the test on I/O errors unless they return
// the error.
type Conn struct {
	t   testing.TB
	nc  net.Conn
	r   *bufio.Reader
	buf []byte
}

// Dial connects to addr; the connection is closed when the test ends.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ReadTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return NewConn(t, nc)
}

// SourceAddr is the i-th of 64,000 distinct loopback source addresses (127.1.0.1 on), for tests
// whose many clients must not look like one address to the gateway's per-address limits.
func SourceAddr(i int) string {
	i %= 64000
	return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)
}

// DialFrom connects to addr from the loopback source address src (SourceAddr); it returns
// the error instead of failing the test, for use outside the test's goroutine.
func DialFrom(addr, src string) (net.Conn, error) {
	d := net.Dialer{Timeout: ReadTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return d.Dial("tcp", addr)
}

// NewConn wraps a connection the test opened itself. t may be nil for a Conn used outside the
// test's goroutine: only the methods that return their error (Write, WriteRaw, ReadFrame,
// ReadClose) may be called then.
func NewConn(t testing.TB, nc net.Conn) *Conn {
	return &Conn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// NetConn is the underlying connection (to close, half-close or set options).
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection.
func (c *Conn) Close() { _ = c.nc.Close() }

// SendRaw writes b as is.
func (c *Conn) SendRaw(b []byte) {
	c.t.Helper()
	if err := c.WriteRaw(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Send writes one length-prefixed frame (no size limit: the test may send oversized frames).
func (c *Conn) Send(f *pb.Frame) {
	c.t.Helper()
	if err := c.Write(f); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// WriteRaw is SendRaw returning the error.
func (c *Conn) WriteRaw(b []byte) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(ReadTimeout)); err != nil {
		return err
	}
	_, err := c.nc.Write(b)
	return err
}

// Write is Send returning the error.
func (c *Conn) Write(f *pb.Frame) error {
	b, err := protocol.Append(nil, f, 1<<30)
	if err != nil {
		return err
	}
	return c.WriteRaw(b)
}

// ReadFrame reads the next frame within timeout; the error is the read's (io.EOF when the
// gateway closed cleanly (FIN), syscall.ECONNRESET on a reset (RST), a timeout...).
func (c *Conn) ReadFrame(timeout time.Duration) (*pb.Frame, error) {
	if err := c.nc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	f, buf, err := protocol.Read(c.r, maxReadBody, c.buf)
	c.buf = buf
	return f, err
}

// Read reads the next frame within ReadTimeout; any error fails the test.
func (c *Conn) Read() *pb.Frame {
	c.t.Helper()
	f, err := c.ReadFrame(ReadTimeout)
	if err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

// HandshakeFrame is a valid HANDSHAKE with the token, for tests to alter before sending.
func HandshakeFrame(token string) *pb.Frame {
	return &pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{
		ProtocolVersion: protocol.Version,
		Token:           token,
		DeviceId:        "hostile-device",
		ClientVersion:   "hostile/1",
	}}}
}

// Handshake sends HandshakeFrame(token), changed by edit when not nil, and returns the
// HANDSHAKE_ACK; any other answer fails the test.
func (c *Conn) Handshake(token string, edit func(*pb.Handshake)) *pb.HandshakeAck {
	c.t.Helper()
	f := HandshakeFrame(token)
	if edit != nil {
		edit(f.GetHandshake())
	}
	c.Send(f)
	got := c.Read()
	ack := got.GetHandshakeAck()
	if ack == nil {
		c.t.Fatalf("handshake answered with %s", describe(got))
	}
	return ack
}

// ExpectError reads the next frame and fails the test unless it is an ERROR with code; it
// returns the ERROR.
func (c *Conn) ExpectError(code pb.ErrorCode) *pb.Error {
	c.t.Helper()
	got := c.Read()
	e := got.GetError()
	if e == nil || e.Code != code {
		c.t.Fatalf("got %s, want ERROR %s", describe(got), code)
	}
	return e
}

// ExpectClosed reads until the gateway closes the connection (skipping frames, at most
// 1000) and fails the test unless the close is a clean FIN (io.EOF) within ReadTimeout.
func (c *Conn) ExpectClosed() {
	c.t.Helper()
	if err := c.ReadClose(ReadTimeout); err != nil {
		c.t.Fatal(err)
	}
}

// ReadClose reads until the connection ends and returns nil for a clean FIN, or what
// happened instead: a reset, a timeout, more than 1000 frames.
func (c *Conn) ReadClose(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for range 1000 {
		_, err := c.ReadFrame(time.Until(deadline))
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, syscall.ECONNRESET):
			return fmt.Errorf("connection reset (RST), want a clean close (FIN): %w", err)
		default:
			return fmt.Errorf("want a clean close (FIN): %w", err)
		}
	}
	return errors.New("more than 1000 frames and no close")
}

// describe names a frame for failure messages.
func describe(f *pb.Frame) string {
	if e := f.GetError(); e != nil {
		return fmt.Sprintf("ERROR %s (%q)", e.Code, e.Message)
	}
	if g := f.GetGoaway(); g != nil {
		return fmt.Sprintf("GOAWAY %s", g.Reason)
	}
	return protocol.Kind(f)
}
