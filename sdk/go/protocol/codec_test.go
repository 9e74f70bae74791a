package protocol_test

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

const maxBody = 1 << 16

func encode(t testing.TB, frames ...*pb.Frame) []byte {
	t.Helper()
	var out []byte
	for _, f := range frames {
		var err error
		if out, err = protocol.Append(out, f, maxBody); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestDecodeWaitsForWholeFrames(t *testing.T) {
	frames := []*pb.Frame{
		{Seq: 1, Body: &pb.Frame_Ping{Ping: &pb.Ping{ClientTimeMs: 42}}},
		{Seq: 2, Body: &pb.Frame_Request{Request: &pb.Request{Service: "chat", Method: "send", Payload: bytes.Repeat([]byte("x"), 3000)}}},
		{Body: &pb.Frame_PushAck{PushAck: &pb.PushAck{MessageId: "m1"}}},
	}
	wire := encode(t, frames...)

	// Every byte arrives on its own: each frame must come out exactly once, whole, in order.
	buf := &streamReader{}
	var got []*pb.Frame
	for i := range wire {
		buf.write(wire[i : i+1])
		for {
			f, err := protocol.Decode(buf, maxBody)
			if err != nil {
				t.Fatalf("after %d bytes: %v", i+1, err)
			}
			if f == nil {
				break
			}
			got = append(got, f)
		}
	}
	if len(got) != len(frames) {
		t.Fatalf("decoded %d frames, want %d", len(got), len(frames))
	}
	for i := range frames {
		if !proto.Equal(got[i], frames[i]) {
			t.Errorf("frame %d = %v, want %v", i, got[i], frames[i])
		}
	}
	if buf.Len() != 0 {
		t.Errorf("%d bytes left over", buf.Len())
	}
}

func TestDecodeRejects(t *testing.T) {
	valid := encode(t, &pb.Frame{Body: &pb.Frame_Ping{Ping: &pb.Ping{}}})
	tests := []struct {
		name string
		wire []byte
		want error
	}{
		{"length above max, before the body arrives", []byte{0x00, 0x01, 0x00, 0x01}, protocol.ErrFrameTooLarge},
		{"length at uint32 max", []byte{0xff, 0xff, 0xff, 0xff}, protocol.ErrFrameTooLarge},
		{"zero length", []byte{0, 0, 0, 0}, protocol.ErrBadFrame},
		{"not protobuf", append([]byte{0, 0, 0, 3}, 0xff, 0xff, 0xff), protocol.ErrBadFrame},
		{"frame without body", append([]byte{0, 0, 0, 2}, 0x08, 0x01), protocol.ErrBadFrame},
		{"valid", valid, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := &streamReader{}
			buf.write(tt.wire)
			f, err := protocol.Decode(buf, maxBody)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (f != nil) {
				t.Fatalf("Decode = %v, %v; want error %v", f, err, tt.want)
			}
			if fe, ok := protocol.IsFrameError(err); ok && protocol.Reason(fe.Code) == "" {
				t.Errorf("frame error without a reason: %v", err)
			}
		})
	}
}

func TestAppendRefusesOversizedFrames(t *testing.T) {
	big := &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{Payload: make([]byte, 100)}}}
	prefix := []byte("kept")
	out, err := protocol.Append(prefix, big, 50)
	if !errors.Is(err, protocol.ErrFrameTooLarge) {
		t.Fatalf("Append = %v, want frame_too_large", err)
	}
	if !bytes.Equal(out, prefix) {
		t.Errorf("Append left %q, want the original %q", out, prefix)
	}
}

func TestReadFromBlockingReader(t *testing.T) {
	frames := []*pb.Frame{
		{Seq: 7, Body: &pb.Frame_Pong{Pong: &pb.Pong{ClientTimeMs: 1, ServerTimeMs: 2}}},
		{Body: &pb.Frame_Push{Push: &pb.Push{MessageId: "m", Payload: []byte("hello"), Position: &pb.Position{Partition: 2, Offset: 99}}}},
	}
	r := bufio.NewReader(bytes.NewReader(encode(t, frames...)))
	var scratch []byte
	for i, want := range frames {
		got, buf, err := protocol.Read(r, maxBody, scratch)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		scratch = buf
		if !proto.Equal(got, want) {
			t.Errorf("frame %d = %v, want %v", i, got, want)
		}
	}
	// The frame must not alias the scratch buffer that the next Read overwrites.
	r = bufio.NewReader(bytes.NewReader(encode(t, frames[1], frames[1])))
	first, scratch, _ := protocol.Read(r, maxBody, nil)
	_, _, _ = protocol.Read(r, maxBody, scratch)
	for i := range scratch {
		scratch[i] = 0
	}
	if string(first.GetPush().GetPayload()) != "hello" {
		t.Errorf("payload aliased the read buffer: %q", first.GetPush().GetPayload())
	}
}

func TestKindAndReasonNames(t *testing.T) {
	if got := protocol.Kind(&pb.Frame{Body: &pb.Frame_HandshakeAck{HandshakeAck: &pb.HandshakeAck{}}}); got != "handshake_ack" {
		t.Errorf("Kind = %q", got)
	}
	if got := protocol.Reason(pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE); got != "frame_too_large" {
		t.Errorf("Reason = %q", got)
	}
}
