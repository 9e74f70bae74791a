package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// ErrConnectionLost fails requests whose connection ended before their response arrived.
var ErrConnectionLost = errors.New("client: connection lost before the response")

// ServerError is an ERROR frame from the gateway; the connection is closed after it.
type ServerError struct {
	Code    pb.ErrorCode
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("gateway closed the connection: %s: %s", protocol.Reason(e.Code), e.Message)
}

// GoAwayError is the end of a connection the gateway asked the client to leave.
type GoAwayError struct{ GoAway *pb.GoAway }

func (e *GoAwayError) Error() string {
	return fmt.Sprintf("gateway sent GOAWAY %s (reconnect in %dms)", e.GoAway.Reason, e.GoAway.ReconnectDelayMs)
}

// conn is one connection (TCP, TLS or WebSocket: fr) after a successful handshake. Its reader
// goroutine owns the read side; writes are serialised by wmu.
type conn struct {
	nc  net.Conn // the TCP or TLS connection under fr: deadlines
	fr  framer
	ack *pb.HandshakeAck
	max int // the client's own limit: frames read, and frames sent before the ack
	// sendMax bounds the frames sent after the handshake: the smaller of max and the ack's
	// max_frame_bytes (R4). Set once before the reader starts.
	sendMax int
	onPush  func(*pb.Push)
	onLeave func(*conn) // called on GOAWAY, before calls can see errLeaving
	// onRefused gets non-fatal ERRORs (Options.OnRefused; may be nil).
	onRefused func(*pb.Error)
	// onRefresh answers a REFRESH_REQUEST; it runs on a goroutine of its own, one at a time
	// (refreshing), so the reader never waits for the token source.
	onRefresh  func(*conn, *pb.RefreshRequest)
	refreshing atomic.Bool

	wmu sync.Mutex

	mu      sync.Mutex // guards pending, seq, err, goaway, werr
	pending map[uint64]chan *pb.Frame
	seq     uint64
	err     error
	goaway  *pb.GoAway // set by the reader on GOAWAY
	// werr is the first failed write: nothing more is written, and the reader, which goes on
	// for at most readAfterWriteFailure, decides the cause (R37).
	werr error

	// leaving is closed on GOAWAY: no new calls go out on this connection, which stays open
	// until the calls already sent have their responses (like HTTP/2's graceful GOAWAY).
	leaving chan struct{}
	done    chan struct{}
}

// readAfterWriteFailure bounds how long the reader goes on after a write failed, looking for
// the fatal ERROR that says why (the gateway lingers as long after its last frame).
const readAfterWriteFailure = 2 * time.Second

// writeError is a write that failed on the connection (not a frame refused before writing).
type writeError struct{ err error }

func (e *writeError) Error() string { return "client: write: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// errLeaving fails a call that would go out on a connection told to go away; it was not sent,
// so the client retries it on the next connection.
var errLeaving = errors.New("client: connection is going away")

// dial connects and runs the handshake; on success the reader and heartbeat goroutines run
// until the connection ends (Done).
func dial(ctx context.Context, o *Options, hs *pb.Handshake, onPush func(*pb.Push), onLeave func(*conn), onRefresh func(*conn, *pb.RefreshRequest)) (*conn, error) {
	nc, fr, err := openTransport(ctx, o)
	if err != nil {
		return nil, err
	}
	c := &conn{nc: nc, fr: fr, max: o.MaxFrameBytes, sendMax: o.MaxFrameBytes, onPush: onPush, onLeave: onLeave, onRefused: o.OnRefused, onRefresh: onRefresh,
		pending: map[uint64]chan *pb.Frame{}, leaving: make(chan struct{}), done: make(chan struct{})}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	if err := c.write(&pb.Frame{Body: &pb.Frame_Handshake{Handshake: hs}}); err != nil {
		fr.close(err)
		return nil, err
	}
	f, buf, err := fr.read(c.max, nil)
	if err != nil {
		fr.close(err)
		return nil, fmt.Errorf("while waiting for the handshake ack: %w", err)
	}
	switch b := f.Body.(type) {
	case *pb.Frame_HandshakeAck:
		c.ack = b.HandshakeAck
		c.sendMax = sendLimit(c.max, c.ack.MaxFrameBytes)
	case *pb.Frame_Error:
		err := &ServerError{Code: b.Error.Code, Message: b.Error.Message}
		fr.close(err)
		return nil, err
	default:
		err := fmt.Errorf("client: expected HANDSHAKE_ACK, got %s", protocol.Kind(f))
		fr.close(err)
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	go c.readLoop(buf)
	go c.heartbeat(time.Duration(c.ack.HeartbeatIntervalMs) * time.Millisecond)
	return c, nil
}

// openTransport connects to o.Addr: a WebSocket URL is dialled and upgraded (websocket.go),
// a host:port is dialled over TCP, with TLS when o.TLS is set.
func openTransport(ctx context.Context, o *Options) (net.Conn, framer, error) {
	dialer := o.Dialer.DialContext
	if o.DialContext != nil {
		dialer = o.DialContext
	}
	u, err := webSocketURL(o.Addr)
	if err != nil {
		return nil, nil, err
	}
	if u != nil {
		return dialWebSocket(ctx, o, u, dialer)
	}
	nc, err := dialer(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, nil, err
	}
	if o.TLS != nil {
		if nc, err = handshakeTLS(ctx, nc, o.Addr, o.TLS); err != nil {
			return nil, nil, err
		}
	}
	return nc, newStreamFramer(nc), nil
}

// handshakeTLS runs a client TLS handshake on nc within ctx. It closes nc on failure.
func handshakeTLS(ctx context.Context, nc net.Conn, addr string, cfg *tls.Config) (net.Conn, error) {
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("while running the TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// sendLimit is the largest frame body the client sends on a connection: its own limit, or the
// gateway's when the ack names a smaller one (0: the ack names none). A frame above the
// gateway's limit would make it close the connection with FRAME_TOO_LARGE (R4).
func sendLimit(own int, ack uint32) int {
	if ack > 0 && int64(ack) < int64(own) {
		return int(ack)
	}
	return own
}

// write encodes and sends one frame; see encode and send.
func (c *conn) write(f *pb.Frame) error {
	b, err := c.encode(f)
	if err != nil {
		return err
	}
	return c.send(b)
}

// encode frames f for sending. A frame above the send limit fails with a *protocol.FrameError
// (FRAME_TOO_LARGE): nothing is written and the connection stays (R4).
func (c *conn) encode(f *pb.Frame) ([]byte, error) {
	return protocol.Append(nil, f, c.sendMax)
}

// send writes an encoded frame; an error is the transport's (a *writeError).
func (c *conn) send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	werr := c.werr
	c.mu.Unlock()
	if werr != nil {
		return werr // R37: nothing more is written after a failed write
	}
	if err := c.fr.write(b); err != nil {
		return c.writeFailed(err)
	}
	return nil
}

// writeFailed remembers the first failed write and gives the reader readAfterWriteFailure to
// reach EOF or a read error: a reset can come before the reader got to the gateway's fatal
// ERROR, and that ERROR, not the reset, is why the connection ends (R37).
func (c *conn) writeFailed(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr == nil {
		c.werr = &writeError{err: err}
		_ = c.nc.SetReadDeadline(time.Now().Add(readAfterWriteFailure))
	}
	return c.werr
}

// readEnd is the cause of a connection whose reader stopped with err: a failed write's error if
// one came first (only a fatal ERROR read meanwhile beats it), else err.
func (c *conn) readEnd(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	return err
}

// call sends a frame with a fresh seq and waits for the frame answering it.
func (c *conn) call(ctx context.Context, f *pb.Frame) (*pb.Frame, error) {
	ch := make(chan *pb.Frame, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %v", ErrConnectionLost, err)
	}
	if c.goaway != nil {
		c.mu.Unlock()
		return nil, errLeaving
	}
	c.seq++
	seq := c.seq
	c.pending[seq] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, seq)
		c.mu.Unlock()
	}()

	f.Seq = seq
	b, err := c.encode(f)
	if err != nil {
		return nil, err // nothing was written: only this call fails, the connection stays (R4)
	}
	if err := c.send(b); err != nil {
		// Lost like every call in flight, once the reader has decided the cause (R37).
		select {
		case <-c.done:
			return nil, fmt.Errorf("%w: %v", ErrConnectionLost, c.Err())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-c.done:
		return nil, fmt.Errorf("%w: %v", ErrConnectionLost, c.Err())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *conn) readLoop(buf []byte) {
	for {
		var f *pb.Frame
		var err error
		f, buf, err = c.fr.read(c.max, buf)
		if err != nil {
			c.close(c.readEnd(err))
			return
		}
		switch b := f.Body.(type) {
		case *pb.Frame_Response, *pb.Frame_Pong, *pb.Frame_RefreshAck:
			c.mu.Lock()
			ch := c.pending[f.Seq]
			delete(c.pending, f.Seq)
			last := c.goaway != nil && len(c.pending) == 0
			c.mu.Unlock()
			if ch != nil {
				ch <- f
			}
			if last {
				c.close(&GoAwayError{GoAway: c.goaway})
				return
			}
		case *pb.Frame_Push:
			c.mu.Lock()
			leaving := c.goaway != nil
			c.mu.Unlock()
			// After GOAWAY the gateway queues no pushes on purpose; any that raced with it are
			// replayed on the next connection from the positions the client resumes with.
			if c.onPush != nil && !leaving {
				c.onPush(b.Push)
			}
		case *pb.Frame_RefreshRequest:
			if c.onRefresh != nil && c.refreshing.CompareAndSwap(false, true) {
				go func() {
					defer c.refreshing.Store(false)
					c.onRefresh(c, b.RefreshRequest)
				}()
			}
		case *pb.Frame_Goaway:
			c.mu.Lock()
			first := c.goaway == nil
			c.goaway = b.Goaway
			idle := len(c.pending) == 0
			if first && c.onLeave != nil {
				c.onLeave(c) // under mu: no call sees errLeaving while c is still current
			}
			c.mu.Unlock()
			if first {
				close(c.leaving)
			}
			if idle {
				c.close(&GoAwayError{GoAway: b.Goaway})
				return
			}
		case *pb.Frame_Error:
			if !b.Error.Fatal {
				if c.onRefused != nil {
					c.onRefused(b.Error)
				}
				continue
			}
			c.close(&ServerError{Code: b.Error.Code, Message: b.Error.Message})
			return
		}
	}
}

// heartbeat pings at the interval the gateway asked for; any failure ends the connection.
func (c *conn) heartbeat(every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			_, err := c.call(ctx, &pb.Frame{Body: &pb.Frame_Ping{Ping: &pb.Ping{ClientTimeMs: time.Now().UnixMilli()}}})
			cancel()
			if errors.Is(err, errLeaving) {
				return
			}
			if err != nil {
				if c.readEnd(nil) == nil { // after a failed write the reader decides (R37)
					c.close(fmt.Errorf("heartbeat: %w", err))
				}
				return
			}
		case <-c.done:
			return
		}
	}
}

// close ends the connection once, remembering the first cause.
func (c *conn) close(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.mu.Unlock()
	c.fr.close(err)
	close(c.done)
}

// leavingCause is the GOAWAY that made the connection leave, as an error.
func (c *conn) leavingCause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.goaway != nil {
		return &GoAwayError{GoAway: c.goaway}
	}
	return c.err
}

// Err is why the connection ended (nil while open).
func (c *conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
