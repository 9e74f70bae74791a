package client_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// failingConn fails every write once told to, as a connection the peer reset does before the
// reader has read what came ahead of the reset; reads pass through.
type failingConn struct {
	net.Conn
	fail   atomic.Bool
	failed atomic.Int32 // writes refused
}

var errReset = errors.New("connection reset by peer (failingConn)")

func (c *failingConn) Write(b []byte) (int, error) {
	if c.fail.Load() {
		c.failed.Add(1)
		return 0, errReset
	}
	return c.Conn.Write(b)
}

// failingDial dials through a failingConn, which it hands to the test.
func failingDial(conns chan<- *failingConn) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		fc := &failingConn{Conn: nc}
		conns <- fc
		return fc, nil
	}
}

// TestFatalErrorReadAfterAFailedWriteIsTheCause (R37): the reader is held up by the app's push
// callback while the gateway sends a fatal ERROR and the client's writes fail. The SDK writes
// nothing more, waits for its reader, and the ERROR is the cause; both requests fail with
// ErrConnectionLost once it is known.
func TestFatalErrorReadAfterAFailedWriteIsTheCause(t *testing.T) {
	g := newFakeGateway(t)
	conns := make(chan *failingConn, 4)
	held, release := make(chan struct{}), make(chan struct{})
	causes := make(chan error, 4)
	connected := connectAsync(t, client.Options{Addr: g.addr(), Token: "tok", Reconnect: fastReconnect,
		DialContext: failingDial(conns),
		OnPush: func(p *client.Push) {
			if p.MessageId == "hold" {
				close(held)
				<-release
			}
		},
		OnDisconnect: func(err error) { causes <- err }})
	first := g.accept()
	first.handshake()
	first.ack()
	c := connected()
	fc := <-conns

	first.write(pushAt("hold", 0, 1))
	<-held
	first.fail(pb.ErrorCode_ERROR_CODE_INTERNAL, "bye") // queued behind the held push
	fc.fail.Store(true)
	results := make(chan error, 2)
	request := func() {
		_, err := c.Request(t.Context(), "svc", "m", nil)
		results <- err
	}
	go request()
	waitFor(t, timeout, "the failed write", func() bool { return fc.failed.Load() == 1 })
	go request()
	select {
	case err := <-results:
		t.Fatalf("a request returned %v before the reader decided the cause", err)
	case cause := <-causes:
		t.Fatalf("disconnected with %v before the reader decided the cause", cause)
	case <-time.After(100 * time.Millisecond): // a bounded look for what must not happen
	}
	close(release)

	var se *client.ServerError
	if cause := <-causes; !errors.As(cause, &se) || se.Code != pb.ErrorCode_ERROR_CODE_INTERNAL || se.Message != "bye" {
		t.Fatalf("disconnected with %v, want the gateway's ERROR INTERNAL bye", cause)
	}
	for range 2 {
		if err := <-results; !errors.Is(err, client.ErrConnectionLost) {
			t.Fatalf("request failed with %v, want ErrConnectionLost", err)
		}
	}
	if n := fc.failed.Load(); n != 1 {
		t.Fatalf("%d writes after the first failed one, want none", n-1)
	}
}

// TestFailedWriteWithoutErrorEndsWithinTheLinger (R37): a write fails and nothing more arrives
// (no ERROR, no EOF): the connection ends with the write error once the reader has waited
// 2 s, and the request fails with ErrConnectionLost.
func TestFailedWriteWithoutErrorEndsWithinTheLinger(t *testing.T) {
	g := newFakeGateway(t)
	conns := make(chan *failingConn, 4)
	causes := make(chan error, 4)
	connected := connectAsync(t, client.Options{Addr: g.addr(), Token: "tok", Reconnect: fastReconnect,
		DialContext: failingDial(conns), OnDisconnect: func(err error) { causes <- err }})
	first := g.accept()
	first.handshake()
	first.ack()
	c := connected()
	fc := <-conns
	fc.fail.Store(true)
	start := time.Now()
	_, err := c.Request(t.Context(), "svc", "m", nil)
	if !errors.Is(err, client.ErrConnectionLost) {
		t.Fatalf("request failed with %v, want ErrConnectionLost", err)
	}
	cause := <-causes
	if took := time.Since(start); took < 1900*time.Millisecond || took > 5*time.Second {
		t.Fatalf("the connection ended %v after the failed write, want the reader's 2 s", took)
	}
	if !errors.Is(cause, errReset) || !strings.Contains(cause.Error(), "write") {
		t.Fatalf("disconnected with %v, want the write error", cause)
	}
}
