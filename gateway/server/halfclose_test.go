package server_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// halfCloseRounds repeats each case: the client's FIN races the gateway's ERROR.
const halfCloseRounds = 20

// A plaintext client that half-closes (FIN) right after a frame the gateway refuses still gets
// the ERROR that says why, then EOF. Before the fix netpoll saw the hang-up, the session was
// aborted and the connection closed before the queued ERROR was written: the client read EOF
// alone. The TLS and WebSocket ports had the same bug (TestTLSHalfCloseAfterRefusedFrame,
// TestWebSocketHalfCloseAfterRefusedMessage).
func TestHalfCloseAfterRefusedFrame(t *testing.T) {
	h := start(t, nil, func(c *config.Config) { c.Limits.MaxFrameBytes = 1024 })
	var tooLarge [4]byte
	binary.BigEndian.PutUint32(tooLarge[:], 1<<20)
	undecodable := []byte{0, 0, 0, 2, 0xff, 0xff}
	ping := frameBytes(t, &pb.Frame{Seq: 1, Body: &pb.Frame_Ping{Ping: &pb.Ping{}}})
	for _, tt := range []struct {
		name      string
		handshake bool   // the session is established first
		send      []byte // then these bytes, in one write
		code      pb.ErrorCode
	}{
		{"undecodable before the handshake", false, undecodable, pb.ErrorCode_ERROR_CODE_BAD_FRAME},
		{"prefix over the handshake limit", false, tooLarge[:], pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE},
		{"undecodable in a session", true, undecodable, pb.ErrorCode_ERROR_CODE_BAD_FRAME},
		{"prefix over the frame limit in a session", true, tooLarge[:], pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE},
		// The PONG's write may still be running when the ERROR is queued behind it.
		{"PING then undecodable in a session", true, append(append([]byte(nil), ping...), undecodable...), pb.ErrorCode_ERROR_CODE_BAD_FRAME},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for range halfCloseRounds {
				r := h.raw()
				r.t = t
				if tt.handshake {
					r.handshake(h.token("hana"))
				}
				r.writeBytes(tt.send)
				if err := r.nc.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				r.expectErrorThenEOF(tt.code)
			}
		})
	}
	if t.Failed() {
		return
	}
	// The refusals are counted as such, not as the client's close.
	for _, reason := range []session.CloseReason{session.ReasonBadFrame, session.ReasonFrameTooLarge} {
		eventually(t, "closes{"+string(reason)+"}", func() bool {
			return counter(h.m.Closes.WithLabelValues(string(reason))) >= 2*halfCloseRounds
		})
	}
}

// Without the half-close the same refusals end the same way: ERROR, then EOF once the client
// closes.
func TestRefusedFrameWithoutHalfClose(t *testing.T) {
	h := start(t, nil, nil)
	r := h.raw()
	r.writeBytes([]byte{0, 0, 0, 2, 0xff, 0xff})
	r.expectErrorThenEOF(pb.ErrorCode_ERROR_CODE_BAD_FRAME)

	r = h.raw()
	r.handshake(h.token("ines"))
	r.writeBytes([]byte{0, 0, 0, 2, 0xff, 0xff})
	r.expectErrorThenEOF(pb.ErrorCode_ERROR_CODE_BAD_FRAME)
}

// A client that half-closes right after a valid HANDSHAKE has closed (docs/protocol.md,
// "Closing"): the session ends as client_closed, the gateway closes with a FIN (EOF, never a
// reset), and what reaches the client before it is at most the HANDSHAKE_ACK.
func TestHalfCloseAfterHandshake(t *testing.T) {
	h := start(t, nil, nil)
	before := counter(h.m.Closes.WithLabelValues(string(session.ReasonClientClosed)))
	for range halfCloseRounds {
		r := h.raw()
		r.send(&pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{ProtocolVersion: protocol.Version, Token: h.token("jon")}}})
		if err := r.nc.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = r.nc.SetReadDeadline(time.Now().Add(wait))
		for i := 0; ; i++ {
			f, _, err := readRaw(r)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("reading until EOF: %v", err)
			}
			if i > 0 || f.GetHandshakeAck() == nil {
				t.Fatalf("frame %d before EOF: %v, want at most a HANDSHAKE_ACK", i, f)
			}
		}
	}
	eventually(t, "closes{client_closed}", func() bool {
		return counter(h.m.Closes.WithLabelValues(string(session.ReasonClientClosed))) >= before+halfCloseRounds
	})
	eventually(t, "no session left", func() bool { return counter(h.m.Sessions) == 0 && counter(h.m.Connections) == 0 })
}

func frameBytes(t *testing.T, f *pb.Frame) []byte {
	t.Helper()
	b, err := protocol.Append(nil, f, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expectErrorThenEOF reads frames until an ERROR with the given code, then expects EOF: a FIN
// right after the ERROR, not a reset and not another frame.
func (r *raw) expectErrorThenEOF(code pb.ErrorCode) {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(wait))
	for i := 0; i < 100; i++ {
		f, _, err := readRaw(r)
		if err != nil {
			r.t.Fatalf("frame %d: %v, want ERROR %s", i, err, code)
		}
		e := f.GetError()
		if e == nil {
			continue
		}
		if e.Code != code || !e.Fatal {
			r.t.Fatalf("ERROR %s (%s, fatal %v), want fatal %s", e.Code, e.Message, e.Fatal, code)
		}
		if _, err := r.r.ReadByte(); !errors.Is(err, io.EOF) {
			r.t.Fatalf("after the ERROR: %v, want EOF", err)
		}
		return
	}
	r.t.Fatalf("no ERROR %s within 100 frames", code)
}
