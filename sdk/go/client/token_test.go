package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// fastReconnect makes reconnects quick and without the loss spread.
var fastReconnect = client.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, LostSpread: -1}

// countingSource returns "t1", "t2", ... one new token per call.
func countingSource(calls *atomic.Int32) client.TokenSource {
	return func(context.Context) (string, error) {
		return fmt.Sprintf("t%d", calls.Add(1)), nil
	}
}

// TestReconnectAfterRefusedTokenAsksTokenSource: a session closed with TOKEN_EXPIRED, then a
// reconnect refused as UNAUTHENTICATED (the source still had a stale token), then one with a
// fresh token: the client keeps going instead of stopping for good, and every handshake
// carries a token the source returned just before it.
func TestReconnectAfterRefusedTokenAsksTokenSource(t *testing.T) {
	g := newFakeGateway(t)
	var calls atomic.Int32
	var connects atomic.Int32
	connected := connectAsync(t, client.Options{
		Addr: g.addr(), TokenSource: countingSource(&calls), Reconnect: fastReconnect,
		OnConnect: func(*pb.HandshakeAck) { connects.Add(1) },
	})
	first := g.accept()
	if tok := first.handshake(); tok != "t1" {
		t.Fatalf("first handshake token = %q, want t1", tok)
	}
	first.ack()
	c := connected()
	first.fail(pb.ErrorCode_ERROR_CODE_TOKEN_EXPIRED, "token expired")

	second := g.accept()
	if tok := second.handshake(); tok != "t2" {
		t.Fatalf("reconnect token = %q, want t2 (asked again)", tok)
	}
	second.fail(pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "expired_token")

	third := g.accept()
	if tok := third.handshake(); tok != "t3" {
		t.Fatalf("retry token = %q, want t3", tok)
	}
	third.ack()
	waitFor(t, timeout, "the client reconnected", func() bool { return connects.Load() == 2 })
	if err := c.Err(); err != nil {
		t.Fatalf("client stopped: %v", err)
	}
}

// TestConnectCallsTokenSourceFirst: Connect's own handshake uses the source too.
func TestConnectCallsTokenSourceFirst(t *testing.T) {
	g := newFakeGateway(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := g.accept()
		if tok := c.handshake(); tok != "fresh" {
			t.Errorf("token = %q, want fresh", tok)
		}
		c.ack()
	}()
	c, err := client.Connect(context.Background(), client.Options{
		Addr: g.addr(), Token: "fixed-is-ignored",
		TokenSource: func(context.Context) (string, error) { return "fresh", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	<-done
	c.Close()
}

// TestAuthAttemptsBoundTheRetries: a token source that never gets a valid token stops the
// client after AuthAttempts refused handshakes, with the refusal as its error.
func TestAuthAttemptsBoundTheRetries(t *testing.T) {
	g := newFakeGateway(t)
	var calls atomic.Int32
	connected := connectAsync(t, client.Options{
		Addr: g.addr(), TokenSource: countingSource(&calls), Reconnect: fastReconnect, AuthAttempts: 3,
	})
	first := g.accept()
	first.handshake()
	first.ack()
	c := connected()
	first.fail(pb.ErrorCode_ERROR_CODE_TOKEN_EXPIRED, "token expired") // refusal 1
	for range 2 {                                                      // refusals 2 and 3
		next := g.accept()
		next.handshake()
		next.fail(pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "invalid_token")
	}
	select {
	case <-c.Done():
	case <-time.After(timeout):
		t.Fatal("the client kept reconnecting past AuthAttempts")
	}
	var se *client.ServerError
	if err := c.Err(); !errors.As(err, &se) || se.Code != pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED {
		t.Fatalf("Err() = %v, want the UNAUTHENTICATED refusal", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("token source called %d times, want 3 (connect + 2 reconnects)", n)
	}
}

// TestFixedTokenStopsWhenExpired: a fixed token cannot be refreshed, so TOKEN_EXPIRED stops
// the client at once rather than reconnecting with a token the gateway will refuse.
func TestFixedTokenStopsWhenExpired(t *testing.T) {
	g := newFakeGateway(t)
	go func() {
		c := g.accept()
		c.handshake()
		c.ack()
		c.fail(pb.ErrorCode_ERROR_CODE_TOKEN_EXPIRED, "token expired")
	}()
	c, err := client.Connect(context.Background(), client.Options{Addr: g.addr(), Token: "fixed", Reconnect: fastReconnect})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-c.Done():
	case <-time.After(timeout):
		t.Fatal("the client did not stop")
	}
	var se *client.ServerError
	if !errors.As(c.Err(), &se) || se.Code != pb.ErrorCode_ERROR_CODE_TOKEN_EXPIRED {
		t.Fatalf("Err() = %v, want TOKEN_EXPIRED", c.Err())
	}
}

// TestWebhookUnavailableIsRetried: the gateway's webhook failing is not the token's fault;
// even a fixed-token client retries.
func TestWebhookUnavailableIsRetried(t *testing.T) {
	g := newFakeGateway(t)
	var connects atomic.Int32
	go func() {
		c := g.accept()
		c.handshake()
		c.ack()
		c.nc.Close() // connection lost
	}()
	c, err := client.Connect(context.Background(), client.Options{Addr: g.addr(), Token: "fixed", Reconnect: fastReconnect,
		OnConnect: func(*pb.HandshakeAck) { connects.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	second := g.accept()
	second.handshake()
	second.fail(pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "webhook_unavailable")
	third := g.accept()
	third.handshake()
	third.ack()
	waitFor(t, timeout, "the client reconnected", func() bool { return connects.Load() == 2 })
}

// TestRefreshAnswersRefreshRequest: the SDK answers REFRESH_REQUEST on the same connection
// with a token from its source, and tries again with a new one when the gateway refuses it.
func TestRefreshAnswersRefreshRequest(t *testing.T) {
	g := newFakeGateway(t)
	var calls atomic.Int32
	connected := connectAsync(t, client.Options{
		Addr: g.addr(), TokenSource: countingSource(&calls), Reconnect: fastReconnect,
	})
	gw := g.accept()
	gw.handshake()
	gw.ack()
	c := connected()
	gw.write(&pb.Frame{Body: &pb.Frame_RefreshRequest{RefreshRequest: &pb.RefreshRequest{
		TokenExpiresAtMs: time.Now().Add(time.Second).UnixMilli(), DeadlineMs: time.Now().Add(5 * time.Second).UnixMilli(),
	}}})
	f := gw.read()
	if f.GetRefresh().GetToken() != "t2" {
		t.Fatalf("got %v, want REFRESH with t2", f)
	}
	gw.write(&pb.Frame{Seq: f.Seq, Body: &pb.Frame_RefreshAck{RefreshAck: &pb.RefreshAck{
		Code: pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, Message: "invalid_token"}}})
	f = gw.read()
	if f.GetRefresh().GetToken() != "t3" {
		t.Fatalf("after a refused refresh got %v, want REFRESH with t3", f)
	}
	gw.write(&pb.Frame{Seq: f.Seq, Body: &pb.Frame_RefreshAck{RefreshAck: &pb.RefreshAck{
		Code: pb.ErrorCode_ERROR_CODE_OK, TokenExpiresAtMs: time.Now().Add(time.Hour).UnixMilli()}}})
	// The refresh is over: the client's next frame is the PING sent now, not another REFRESH.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() { _, _ = c.Ping(ctx) }()
	if f = gw.read(); f.GetPing() == nil {
		t.Fatalf("after the accepted refresh got %v, want PING", f)
	}
}
