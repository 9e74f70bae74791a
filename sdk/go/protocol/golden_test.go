package protocol_test

import (
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from goldenFrames")

// goldenFrames holds at least one frame per kind. testdata/golden/<name>.hex is its wire form
// (length prefix included, deterministic marshal) and <name>.textproto its meaning, where the
// name is the kind, or the kind and a variant: SDKs in other languages are tested against the
// same files.
var goldenFrames = []struct {
	variant string
	frame   *pb.Frame
}{
	{"", &pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{
		ProtocolVersion: 2, Token: "eyJhbGciOiJIUzI1NiJ9.e30.sig", SessionId: "s-1", DeviceId: "d-1", ClientVersion: "ios/3.2.1",
		Resume: &pb.Resume{ResumeToken: "rt", Positions: []*pb.Position{{Partition: 0, Offset: 41}, {Partition: 2, Offset: 7}}},
	}}}},
	{"new_session", &pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{ProtocolVersion: 2, Token: "eyJhbGciOiJIUzI1NiJ9.e30.sig"}}}},
	{"", &pb.Frame{Body: &pb.Frame_HandshakeAck{HandshakeAck: &pb.HandshakeAck{
		ProtocolVersion: 2, SessionId: "s-1", UserId: "u-1", HeartbeatIntervalMs: 30000, IdleTimeoutMs: 90000,
		MaxFrameBytes: 65536, ServerId: "gw-0", ServerTimeMs: 1_790_000_000_000,
		Resume: &pb.ResumeResult{Status: pb.ResumeResult_STATUS_NOT_RECOVERED, NotRecovered: []*pb.Position{{Partition: 2, Offset: 100}},
			Rejected: []*pb.Position{{Partition: 999, Offset: 5}}},
		Positions:        []*pb.Position{{Partition: 0, Offset: 41}, {Partition: 1, Offset: -1}, {Partition: 2, Offset: 130}},
		TokenExpiresAtMs: 1_790_003_600_000,
	}}}},
	{"complete_resume", &pb.Frame{Body: &pb.Frame_HandshakeAck{HandshakeAck: &pb.HandshakeAck{
		ProtocolVersion: 2, SessionId: "s-1", UserId: "u-1", HeartbeatIntervalMs: 30000, IdleTimeoutMs: 90000,
		MaxFrameBytes: 65536, ServerId: "gw-1", ServerTimeMs: 1_790_000_000_500,
		Resume:    &pb.ResumeResult{Status: pb.ResumeResult_STATUS_COMPLETE},
		Positions: []*pb.Position{{Partition: 0, Offset: 44}, {Partition: 1, Offset: -1}, {Partition: 2, Offset: 131}},
	}}}},
	{"", &pb.Frame{Seq: 5, Body: &pb.Frame_Ping{Ping: &pb.Ping{ClientTimeMs: 1_790_000_000_123}}}},
	{"", &pb.Frame{Seq: 5, Body: &pb.Frame_Pong{Pong: &pb.Pong{ClientTimeMs: 1_790_000_000_123, ServerTimeMs: 1_790_000_000_130}}}},
	{"", &pb.Frame{Seq: 6, Body: &pb.Frame_Request{Request: &pb.Request{Service: "chat", Method: "send", Payload: []byte("hi"), Headers: map[string]string{"trace": "abc"}, TimeoutMs: 2000}}}},
	{"", &pb.Frame{Seq: 6, Body: &pb.Frame_Response{Response: &pb.Response{Code: pb.ErrorCode_ERROR_CODE_OK, Status: 200, Payload: []byte("ok"), Headers: map[string]string{"trace": "abc"}}}}},
	{"", &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{
		MessageId: "m-1", Payload: []byte("news"), Position: &pb.Position{Partition: 1, Offset: 12},
		AckRequired: true, ReplyExpected: true, ExpiresAtMs: 1_790_000_060_000, CreatedAtMs: 1_790_000_000_000, CorrelationId: "c-9",
	}}}},
	{"", &pb.Frame{Body: &pb.Frame_PushAck{PushAck: &pb.PushAck{MessageId: "m-1", Position: &pb.Position{Partition: 1, Offset: 12}}}}},
	{"", &pb.Frame{Body: &pb.Frame_PushReply{PushReply: &pb.PushReply{MessageId: "m-1", Payload: []byte("yes"), Position: &pb.Position{Partition: 1, Offset: 12}}}}},
	{"", &pb.Frame{Body: &pb.Frame_Goaway{Goaway: &pb.GoAway{Reason: pb.GoAway_REASON_DRAINING, ReconnectDelayMs: 1500, ResumeToken: "rt-2", Message: "draining"}}}},
	{"", &pb.Frame{Body: &pb.Frame_Error{Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE, Message: "frame of 70000 bytes exceeds 65536", Fatal: true}}}},
	{"not_fatal", &pb.Frame{Body: &pb.Frame_Error{Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_PUSH, Message: "no unanswered push m-7 on this session"}}}},
	{"", &pb.Frame{Body: &pb.Frame_RefreshRequest{RefreshRequest: &pb.RefreshRequest{TokenExpiresAtMs: 1_790_003_600_000, DeadlineMs: 1_790_003_630_000}}}},
	{"", &pb.Frame{Seq: 7, Body: &pb.Frame_Refresh{Refresh: &pb.Refresh{Token: "eyJhbGciOiJIUzI1NiJ9.e30.sig2"}}}},
	{"", &pb.Frame{Seq: 7, Body: &pb.Frame_RefreshAck{RefreshAck: &pb.RefreshAck{Code: pb.ErrorCode_ERROR_CODE_OK, TokenExpiresAtMs: 1_790_007_200_000}}}},
}

// goldenRecords are Kafka record values (protobuf, no length prefix) of the downlink and
// receipts topics, for publishers and receipt readers in other languages: testdata/golden/
// <name>.hex and <name>.textproto.
var goldenRecords = []struct {
	name string
	msg  proto.Message
}{
	{"downlink_user", &pb.Downlink{MessageId: "m-1", Target: &pb.Target{Kind: &pb.Target_UserId{UserId: "u-1"}},
		Payload: []byte("news"), AckRequired: true, ExpiresAtMs: 1_790_000_060_000, CreatedAtMs: 1_790_000_000_000, CorrelationId: "c-9"}},
	{"downlink_session", &pb.Downlink{MessageId: "m-2", Target: &pb.Target{Kind: &pb.Target_Session{Session: &pb.SessionTarget{UserId: "u-1", SessionId: "s-1"}}},
		Payload: []byte("for one device"), ReplyExpected: true, CreatedAtMs: 1_790_000_000_000}},
	{"downlink_group", &pb.Downlink{MessageId: "m-3", Target: &pb.Target{Kind: &pb.Target_Group{Group: "vip"}}, Payload: []byte("hello vips")}},
	{"downlink_all", &pb.Downlink{MessageId: "m-4", Target: &pb.Target{Kind: &pb.Target_All{All: true}}, Payload: []byte("hello all")}},
	{"receipt_delivered", &pb.Receipt{MessageId: "m-1", CorrelationId: "c-9", Kind: pb.Receipt_KIND_DELIVERED, SessionId: "s-1", UserId: "u-1",
		ServerId: "gw-0", AtMs: 1_790_000_000_010, Position: &pb.Position{Partition: 1, Offset: 12}, ExpiresAtMs: 1_790_000_060_000}},
	{"receipt_replied", &pb.Receipt{MessageId: "m-2", Kind: pb.Receipt_KIND_REPLIED, Payload: []byte("yes"), SessionId: "s-1", UserId: "u-1",
		ServerId: "gw-1", AtMs: 1_790_000_000_900, Position: &pb.Position{Partition: 1, Offset: 13}}},
}

func TestGoldenVectorsCoverEveryKind(t *testing.T) {
	have := map[string]bool{}
	for _, g := range goldenFrames {
		have[protocol.Kind(g.frame)] = true
	}
	fields := (&pb.Frame{}).ProtoReflect().Descriptor().Oneofs().ByName("body").Fields()
	for i := 0; i < fields.Len(); i++ {
		if name := string(fields.Get(i).Name()); !have[name] {
			t.Errorf("no golden vector for frame kind %q", name)
		}
	}
}

func TestGoldenVectors(t *testing.T) {
	for _, g := range goldenFrames {
		name := protocol.Kind(g.frame)
		if g.variant != "" {
			name += "_" + g.variant
		}
		t.Run(name, func(t *testing.T) {
			body, err := proto.MarshalOptions{Deterministic: true}.Marshal(g.frame)
			if err != nil {
				t.Fatal(err)
			}
			wire := append([]byte{byte(len(body) >> 24), byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
			golden, meaning := checkGolden(t, name, "Frame", wire, g.frame, &pb.Frame{})
			buf := &streamReader{}
			buf.write(golden)
			decoded, err := protocol.Decode(buf, maxBody)
			if err != nil || !proto.Equal(decoded, meaning) {
				t.Fatalf("%s.hex decodes to %v (%v), want %v", name, decoded, err, meaning)
			}
		})
	}
}

func TestGoldenRecords(t *testing.T) {
	for _, g := range goldenRecords {
		t.Run(g.name, func(t *testing.T) {
			wire, err := proto.MarshalOptions{Deterministic: true}.Marshal(g.msg)
			if err != nil {
				t.Fatal(err)
			}
			empty := g.msg.ProtoReflect().New().Interface()
			golden, meaning := checkGolden(t, g.name, string(g.msg.ProtoReflect().Descriptor().Name()), wire, g.msg, empty)
			decoded := g.msg.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(golden, decoded); err != nil || !proto.Equal(decoded, meaning) {
				t.Fatalf("%s.hex decodes to %v (%v), want %v", g.name, decoded, err, meaning)
			}
		})
	}
}

// checkGolden (re)writes testdata/golden/<name>.{hex,textproto} with -update, checks that this
// code encodes want to the committed bytes and that the committed meaning is want, and returns
// the committed bytes and meaning (decoded into empty).
func checkGolden(t *testing.T, name, what string, wire []byte, want, empty proto.Message) ([]byte, proto.Message) {
	t.Helper()
	dir := filepath.Join("testdata", "golden")
	hexPath, textPath := filepath.Join(dir, name+".hex"), filepath.Join(dir, name+".textproto")
	if *update {
		text := prototext.MarshalOptions{Multiline: true}.Format(want)
		writeFile(t, hexPath, hex.EncodeToString(wire)+"\n")
		writeFile(t, textPath, "# "+what+" "+name+"; its wire form is "+name+".hex.\n"+text)
	}
	golden, err := hex.DecodeString(strings.TrimSpace(readFile(t, hexPath)))
	if err != nil {
		t.Fatal(err)
	}
	if err := prototext.Unmarshal([]byte(readFile(t, textPath)), empty); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(wire); got != hex.EncodeToString(golden) || !proto.Equal(want, empty) {
		t.Errorf("encoding drifted from %s (run go test -update if the change is intended)", hexPath)
	}
	return golden, empty
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
