package client_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// R4: the client sends frames up to the smaller of its own limit and the ack's
// max_frame_bytes (0: none named). A call above it fails with FRAME_TOO_LARGE, writes
// nothing, and the connection stays: the next call goes out on it.
func TestSendLimitIsTheSmallerOfOwnAndAck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		own     int    // Options.MaxFrameBytes (0: the default 65536)
		ack     uint32 // HandshakeAck.MaxFrameBytes
		payload int
		refused bool
	}{
		{"ack smaller refuses", 0, 1000, 2000, true},
		{"ack smaller, frame within it", 0, 4096, 3000, false},
		{"ack names none: own limit", 0, 0, 2000, false},
		{"own smaller than ack refuses", 1000, 65536, 2000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeGateway(t)
			var disconnects atomic.Int32
			wait := connectAsync(t, client.Options{Addr: g.addr(), Token: "t", MaxFrameBytes: tc.own, NoReconnect: true,
				OnDisconnect: func(error) { disconnects.Add(1) }})
			fc := g.accept()
			fc.handshake()
			fc.write(&pb.Frame{Body: &pb.Frame_HandshakeAck{HandshakeAck: &pb.HandshakeAck{
				ProtocolVersion: protocol.Version, SessionId: "s1", UserId: "alice", ServerId: "fake", MaxFrameBytes: tc.ack,
			}}})
			c := wait()

			big := make(chan error, 1)
			go func() {
				_, err := c.Request(context.Background(), "svc", "big", make([]byte, tc.payload))
				big <- err
			}()
			if !tc.refused {
				f := fc.read()
				if f.GetRequest().GetMethod() != "big" {
					t.Fatalf("the gateway got %s, want the request", protocol.Kind(f))
				}
				fc.write(&pb.Frame{Seq: f.Seq, Body: &pb.Frame_Response{Response: &pb.Response{Code: pb.ErrorCode_ERROR_CODE_OK}}})
				if err := recv(t, big); err != nil {
					t.Fatalf("a frame within the limit: %v", err)
				}
				return
			}
			err := recv(t, big)
			if !errors.Is(err, protocol.ErrFrameTooLarge) {
				t.Fatalf("oversized request: %v, want FRAME_TOO_LARGE", err)
			}
			reply := c.Reply(context.Background(), &client.Push{Push: &pb.Push{MessageId: "m1", ReplyExpected: true}}, make([]byte, tc.payload))
			if !errors.Is(reply, protocol.ErrFrameTooLarge) {
				t.Fatalf("oversized reply: %v, want FRAME_TOO_LARGE", reply)
			}

			// The next call goes out on the same connection: the first frame the gateway
			// reads after the ack is this one, so nothing of the refused ones was written.
			small := make(chan error, 1)
			go func() {
				_, err := c.Request(context.Background(), "svc", "small", []byte("hi"))
				small <- err
			}()
			f := fc.read()
			if f.GetRequest().GetMethod() != "small" {
				t.Fatalf("the gateway got %s first, want the small request", protocol.Kind(f))
			}
			fc.write(&pb.Frame{Seq: f.Seq, Body: &pb.Frame_Response{Response: &pb.Response{Code: pb.ErrorCode_ERROR_CODE_OK}}})
			if err := recv(t, small); err != nil {
				t.Fatalf("the call after the refusal: %v", err)
			}
			if n := disconnects.Load(); n != 0 {
				t.Fatalf("%d disconnects after a refused call, want 0", n)
			}
		})
	}
}

// recv waits for a call's outcome, at most timeout.
func recv(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(timeout):
		t.Fatal("the call did not return")
		return nil
	}
}
