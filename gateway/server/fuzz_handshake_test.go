package server_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// fuzzUser is the only user a token in the seed corpus names; the fuzzer cannot sign another.
const fuzzUser = "fuzz-user"

// FuzzHandshake sends arbitrary bytes as the first thing on a connection to a real server on
// loopback — in two writes split at a fuzzed point, then a half-close — and reads what comes
// back until the server closes. Whatever the bytes, the server answers within a bound, never
// with ERROR INTERNAL (a recovered panic), nothing but HANDSHAKE_ACK or ERROR comes first, an
// ACK names the user the signed token names, and nothing follows a fatal ERROR. The seed corpus
// covers valid and invalid handshakes, other frames first, broken framing and resumes. (The
// server here has no downlink: resume positions are validated by the downlink's own tests.)
func FuzzHandshake(f *testing.F) {
	h := start(f, nil, func(c *config.Config) {
		c.Limits.MaxFrameBytes = 4096
		c.Limits.HandshakeTimeout = config.Duration{Duration: 2 * time.Second}
	})
	valid := h.token(fuzzUser)
	expired, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": fuzzUser, "exp": time.Now().Add(-time.Hour).Unix()}).SignedString(h.secret)
	if err != nil {
		f.Fatal(err)
	}
	hs := func(edit func(*pb.Handshake)) *pb.Frame {
		x := &pb.Handshake{ProtocolVersion: protocol.Version, Token: valid, DeviceId: "d", ClientVersion: "fuzz/1"}
		if edit != nil {
			edit(x)
		}
		return &pb.Frame{Body: &pb.Frame_Handshake{Handshake: x}}
	}
	ping := &pb.Frame{Seq: 1, Body: &pb.Frame_Ping{Ping: &pb.Ping{ClientTimeMs: 1}}}
	seeds := [][]*pb.Frame{
		{hs(nil)},
		{hs(nil), ping},
		{hs(nil), hs(nil)},
		{hs(func(x *pb.Handshake) { x.ProtocolVersion = 1 })},
		{hs(func(x *pb.Handshake) { x.ProtocolVersion = 0 })},
		{hs(func(x *pb.Handshake) { x.Token = "" })},
		{hs(func(x *pb.Handshake) { x.Token = expired })},
		{hs(func(x *pb.Handshake) { x.Token = valid + "x" })},
		{hs(func(x *pb.Handshake) { x.SessionId = "a\x00b" })},
		{hs(func(x *pb.Handshake) { x.SessionId = "s-1" })},
		{hs(func(x *pb.Handshake) { x.ClientVersion = string(make([]byte, 300)) })},
		{hs(func(x *pb.Handshake) {
			x.Resume = &pb.Resume{ResumeToken: "t", Positions: []*pb.Position{{Partition: 999, Offset: -5}, {Partition: 0, Offset: 1 << 62}}}
		})},
		{ping},
		{{Body: &pb.Frame_PushAck{PushAck: &pb.PushAck{MessageId: "m"}}}, hs(nil)},
		{{Body: &pb.Frame_Request{Request: &pb.Request{Service: "echo", Method: "m"}}}},
	}
	for _, frames := range seeds {
		var wire []byte
		for _, fr := range frames {
			if wire, err = protocol.Append(wire, fr, 1<<20); err != nil {
				f.Fatal(err)
			}
		}
		f.Add(wire, uint16(len(wire)/2))
		f.Add(wire, uint16(3))
	}
	f.Add([]byte{0, 0, 0, 0}, uint16(2))                 // empty frame
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1}, uint16(1))  // length beyond the limit
	f.Add([]byte{0, 0, 0, 5, 0xff, 0xff}, uint16(4))     // truncated garbage
	f.Add([]byte("\x16\x03\x01\x02\x00\x01"), uint16(1)) // a TLS ClientHello's first bytes

	f.Fuzz(func(t *testing.T, wire []byte, split uint16) {
		nc, err := net.DialTimeout("tcp", h.addr, wait)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		cut := int(split) % (len(wire) + 1)
		for _, part := range [][]byte{wire[:cut], wire[cut:]} {
			if len(part) == 0 {
				continue
			}
			if _, err := nc.Write(part); err != nil {
				break // the server may close before reading everything
			}
		}
		_ = nc.(*net.TCPConn).CloseWrite()
		_ = nc.SetReadDeadline(time.Now().Add(wait))
		r := bufio.NewReader(nc)
		var got []*pb.Frame
		for {
			fr, _, err := protocol.Read(r, 1<<20, nil)
			if err != nil {
				var ne net.Error
				switch {
				case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
				case errors.As(err, &ne) && ne.Timeout():
					t.Fatalf("the server neither answered nor closed within %s (frames so far: %v)", wait, got)
				default:
					t.Fatalf("reading the answer: %v", err)
				}
				break
			}
			got = append(got, fr)
			if len(got) > 100 {
				t.Fatalf("more than 100 frames answered to %d bytes", len(wire))
			}
		}
		for i, fr := range got {
			switch {
			case fr.GetError().GetCode() == pb.ErrorCode_ERROR_CODE_INTERNAL:
				t.Fatalf("ERROR INTERNAL (%s): the server failed on this input", fr.GetError().GetMessage())
			case i == 0 && fr.GetHandshakeAck() == nil && fr.GetError() == nil:
				t.Fatalf("first answer %s: only HANDSHAKE_ACK or ERROR may come before a handshake", protocol.Kind(fr))
			case i > 0 && fr.GetHandshakeAck() != nil:
				t.Fatalf("HANDSHAKE_ACK as answer %d", i)
			case fr.GetHandshakeAck() != nil && fr.GetHandshakeAck().GetUserId() != fuzzUser:
				t.Fatalf("HANDSHAKE_ACK for user %q: only %q has a signed token", fr.GetHandshakeAck().GetUserId(), fuzzUser)
			case fr.GetError().GetFatal() && i != len(got)-1:
				t.Fatalf("%d frames after a fatal ERROR %s", len(got)-1-i, fr.GetError().GetCode())
			}
		}
	})
}
