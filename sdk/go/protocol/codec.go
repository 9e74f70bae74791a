// Package protocol is the client–gateway wire format: length-prefixed protobuf frames (see
// proto/tcpgateway/v1/protocol.proto, the contract). It does no I/O of its own beyond the
// reader and writer it is handed, so the same codec serves netpoll connections and TLS
// connections (bufio over crypto/tls) on the gateway, and blocking net.Conn readers in the
// client SDK.
package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Version is the protocol version this code speaks (Handshake.protocol_version). Version 1
// (session ids not scoped by user, every ERROR fatal, no token refresh) is not spoken.
const Version = 2

// HeaderLen is the size of the big-endian length prefix.
const HeaderLen = 4

// FrameError is a violation of the framing rules; Code is the ERROR frame to send before
// closing the connection.
type FrameError struct {
	Code   pb.ErrorCode
	Detail string
}

func (e *FrameError) Error() string { return Reason(e.Code) + ": " + e.Detail }

// ErrBadFrame and ErrFrameTooLarge match any FrameError of that code with errors.Is.
var (
	ErrBadFrame      = &FrameError{Code: pb.ErrorCode_ERROR_CODE_BAD_FRAME}
	ErrFrameTooLarge = &FrameError{Code: pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE}
)

// Is makes errors.Is(err, ErrBadFrame) true for every bad-frame error, whatever its detail.
func (e *FrameError) Is(target error) bool {
	t, ok := target.(*FrameError)
	return ok && t.Code == e.Code
}

// Reader is the part of netpoll.Reader the decoder needs; netpoll connections and
// netpoll.LinkBuffer implement it.
type Reader interface {
	Len() int
	Peek(n int) ([]byte, error)
	Skip(n int) error
	Next(n int) ([]byte, error)
}

// Decode takes the next complete frame from r without blocking. It returns (nil, nil) when r
// holds less than a whole frame: call again once more bytes have arrived. The length prefix is
// checked against maxBody before anything is read or allocated.
func Decode(r Reader, maxBody int) (*pb.Frame, error) {
	f, _, err := DecodeSize(r, maxBody)
	return f, err
}

// DecodeSize is Decode that also returns the frame's size on the wire, prefix included.
func DecodeSize(r Reader, maxBody int) (*pb.Frame, int, error) {
	if r.Len() < HeaderLen {
		return nil, 0, nil
	}
	head, err := r.Peek(HeaderLen)
	if err != nil {
		return nil, 0, err
	}
	n, err := bodyLen(head, maxBody)
	if err != nil {
		return nil, 0, err
	}
	if r.Len() < HeaderLen+n {
		return nil, 0, nil
	}
	if err := r.Skip(HeaderLen); err != nil {
		return nil, 0, err
	}
	body, err := r.Next(n)
	if err != nil {
		return nil, 0, err
	}
	// Unmarshal copies bytes fields, so the frame stays valid after the reader releases body.
	f, err := unmarshal(body)
	return f, HeaderLen + n, err
}

// Read reads one frame from a blocking reader, for clients on net.Conn. buf is reused when it
// is large enough; the returned frame does not alias it.
func Read(r *bufio.Reader, maxBody int, buf []byte) (*pb.Frame, []byte, error) {
	f, _, buf, err := ReadSize(r, maxBody, buf)
	return f, buf, err
}

// ReadSize is Read that also returns the frame's size on the wire, prefix included: the
// gateway's TLS connections read with it.
func ReadSize(r *bufio.Reader, maxBody int, buf []byte) (*pb.Frame, int, []byte, error) {
	head, err := r.Peek(HeaderLen)
	if err != nil {
		return nil, 0, buf, err
	}
	n, err := bodyLen(head, maxBody)
	if err != nil {
		return nil, 0, buf, err
	}
	if _, err := r.Discard(HeaderLen); err != nil {
		return nil, 0, buf, err
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	body := buf[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, 0, buf, err
	}
	f, err := unmarshal(body)
	return f, HeaderLen + n, buf, err
}

// DecodeMessage decodes a message that must hold exactly one whole frame, length prefix
// included: a WebSocket message (docs/protocol.md#websocket). A prefix that does not match the
// message's length is a bad frame; one beyond maxBody is too large.
func DecodeMessage(msg []byte, maxBody int) (*pb.Frame, error) {
	if len(msg) < HeaderLen {
		return nil, &FrameError{Code: pb.ErrorCode_ERROR_CODE_BAD_FRAME, Detail: fmt.Sprintf("message of %d bytes holds no length prefix", len(msg))}
	}
	n, err := bodyLen(msg, maxBody)
	if err != nil {
		return nil, err
	}
	if n != len(msg)-HeaderLen {
		return nil, &FrameError{Code: pb.ErrorCode_ERROR_CODE_BAD_FRAME, Detail: fmt.Sprintf("message of %d bytes carries a frame of %d: one message, one whole frame", len(msg), HeaderLen+n)}
	}
	return unmarshal(msg[HeaderLen:])
}

// Append appends f, length-prefixed, to dst. It refuses frames whose body exceeds maxBody, so
// the gateway never sends what a peer with the same limit would reject.
func Append(dst []byte, f *pb.Frame, maxBody int) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst, err := proto.MarshalOptions{}.MarshalAppend(dst, f)
	if err != nil {
		return dst[:start], fmt.Errorf("encoding frame: %w", err)
	}
	n := len(dst) - start - HeaderLen
	if n > maxBody {
		return dst[:start], &FrameError{Code: pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE, Detail: fmt.Sprintf("outbound frame of %d bytes exceeds %d", n, maxBody)}
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	return dst, nil
}

// Size is the encoded size of f including its length prefix.
func Size(f *pb.Frame) int { return HeaderLen + proto.Size(f) }

func bodyLen(head []byte, maxBody int) (int, error) {
	n := binary.BigEndian.Uint32(head)
	switch {
	case n == 0:
		return 0, &FrameError{Code: pb.ErrorCode_ERROR_CODE_BAD_FRAME, Detail: "empty frame"}
	case uint64(n) > uint64(maxBody):
		return 0, &FrameError{Code: pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE, Detail: fmt.Sprintf("frame of %d bytes exceeds %d", n, maxBody)}
	}
	return int(n), nil
}

func unmarshal(body []byte) (*pb.Frame, error) {
	f := &pb.Frame{}
	if err := proto.Unmarshal(body, f); err != nil {
		return nil, &FrameError{Code: pb.ErrorCode_ERROR_CODE_BAD_FRAME, Detail: err.Error()}
	}
	if f.Body == nil {
		return nil, &FrameError{Code: pb.ErrorCode_ERROR_CODE_BAD_FRAME, Detail: "frame has no body"}
	}
	return f, nil
}

// IsFrameError reports whether err is a framing violation, and which.
func IsFrameError(err error) (*FrameError, bool) {
	var fe *FrameError
	ok := errors.As(err, &fe)
	return fe, ok
}
