package protocol_test

import (
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudwego/netpoll"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/protocol"
	"github.com/tcpgateway/tcpgateway/gateway/protocol/pb"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from goldenFrames")

// goldenFrames holds one frame per kind. testdata/golden/<kind>.hex is its wire form (length
// prefix included, deterministic marshal) and <kind>.textproto its meaning: SDKs in other
// languages are tested against the same files.
var goldenFrames = []*pb.Frame{
	{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{
		ProtocolVersion: 1, Token: "eyJhbGciOiJIUzI1NiJ9.e30.sig", SessionId: "s-1", DeviceId: "d-1", ClientVersion: "ios/3.2.1",
		Resume: &pb.Resume{ResumeToken: "rt", Positions: []*pb.Position{{Partition: 0, Offset: 41}, {Partition: 2, Offset: 7}}},
	}}},
	{Body: &pb.Frame_HandshakeAck{HandshakeAck: &pb.HandshakeAck{
		ProtocolVersion: 1, SessionId: "s-1", UserId: "u-1", HeartbeatIntervalMs: 30000, IdleTimeoutMs: 90000,
		MaxFrameBytes: 65536, ServerId: "gw-0", ServerTimeMs: 1_790_000_000_000,
		Resume: &pb.ResumeResult{Status: pb.ResumeResult_STATUS_NOT_RECOVERED, NotRecovered: []*pb.Position{{Partition: 2, Offset: 100}}},
	}}},
	{Seq: 5, Body: &pb.Frame_Ping{Ping: &pb.Ping{ClientTimeMs: 1_790_000_000_123}}},
	{Seq: 5, Body: &pb.Frame_Pong{Pong: &pb.Pong{ClientTimeMs: 1_790_000_000_123, ServerTimeMs: 1_790_000_000_130}}},
	{Seq: 6, Body: &pb.Frame_Request{Request: &pb.Request{Service: "chat", Method: "send", Payload: []byte("hi"), Headers: map[string]string{"trace": "abc"}, TimeoutMs: 2000}}},
	{Seq: 6, Body: &pb.Frame_Response{Response: &pb.Response{Code: pb.ErrorCode_ERROR_CODE_OK, Status: 200, Payload: []byte("ok"), Headers: map[string]string{"trace": "abc"}}}},
	{Body: &pb.Frame_Push{Push: &pb.Push{
		MessageId: "m-1", Payload: []byte("news"), Position: &pb.Position{Partition: 1, Offset: 12},
		AckRequired: true, ReplyExpected: true, ExpiresAtMs: 1_790_000_060_000, CreatedAtMs: 1_790_000_000_000, CorrelationId: "c-9",
	}}},
	{Body: &pb.Frame_PushAck{PushAck: &pb.PushAck{MessageId: "m-1", Position: &pb.Position{Partition: 1, Offset: 12}}}},
	{Body: &pb.Frame_PushReply{PushReply: &pb.PushReply{MessageId: "m-1", Payload: []byte("yes"), Position: &pb.Position{Partition: 1, Offset: 12}}}},
	{Body: &pb.Frame_Goaway{Goaway: &pb.GoAway{Reason: pb.GoAway_REASON_DRAINING, ReconnectDelayMs: 1500, ResumeToken: "rt-2", Message: "draining"}}},
	{Body: &pb.Frame_Error{Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE, Message: "frame of 70000 bytes exceeds 65536"}}},
}

func TestGoldenVectorsCoverEveryKind(t *testing.T) {
	have := map[string]bool{}
	for _, f := range goldenFrames {
		have[protocol.Kind(f)] = true
	}
	fields := (&pb.Frame{}).ProtoReflect().Descriptor().Oneofs().ByName("body").Fields()
	for i := 0; i < fields.Len(); i++ {
		if name := string(fields.Get(i).Name()); !have[name] {
			t.Errorf("no golden vector for frame kind %q", name)
		}
	}
}

func TestGoldenVectors(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	for _, want := range goldenFrames {
		kind := protocol.Kind(want)
		t.Run(kind, func(t *testing.T) {
			body, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			wire := append([]byte{byte(len(body) >> 24), byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
			hexPath, textPath := filepath.Join(dir, kind+".hex"), filepath.Join(dir, kind+".textproto")
			if *update {
				text := prototext.MarshalOptions{Multiline: true}.Format(want)
				writeFile(t, hexPath, hex.EncodeToString(wire)+"\n")
				writeFile(t, textPath, "# Frame of kind "+kind+"; its wire form is "+kind+".hex.\n"+text)
			}

			// The committed hex decodes to the committed meaning...
			golden, err := hex.DecodeString(strings.TrimSpace(readFile(t, hexPath)))
			if err != nil {
				t.Fatal(err)
			}
			meaning := &pb.Frame{}
			if err := prototext.Unmarshal([]byte(readFile(t, textPath)), meaning); err != nil {
				t.Fatal(err)
			}
			buf := netpoll.NewLinkBuffer()
			feed(t, buf, golden)
			decoded, err := protocol.Decode(buf, maxBody)
			if err != nil || !proto.Equal(decoded, meaning) {
				t.Fatalf("%s decodes to %v (%v), want %v", hexPath, decoded, err, meaning)
			}
			// ...and this code encodes that meaning to the committed bytes.
			if got := hex.EncodeToString(wire); got != hex.EncodeToString(golden) || !proto.Equal(want, meaning) {
				t.Errorf("encoding drifted from %s (run go test -update if the change is intended)", hexPath)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
