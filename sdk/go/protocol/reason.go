package protocol

import (
	"strings"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Reason is the stable lower_snake name of an error code ("frame_too_large"), used alike in
// logs, metric labels and close reasons.
func Reason(c pb.ErrorCode) string {
	return strings.ToLower(strings.TrimPrefix(c.String(), "ERROR_CODE_"))
}

// Kind is the lower_snake name of a frame's body ("handshake_ack"), for logs and metrics.
func Kind(f *pb.Frame) string {
	if f == nil || f.Body == nil {
		return "none"
	}
	return string(f.ProtoReflect().WhichOneof(bodyOneof).Name())
}

var bodyOneof = (&pb.Frame{}).ProtoReflect().Descriptor().Oneofs().ByName("body")
