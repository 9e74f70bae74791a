package server_test

import (
	"bytes"
	"testing"

	"github.com/cloudwego/netpoll"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// The codec's own tests (sdk/go/protocol) decode from a plain buffer: that module does not
// depend on netpoll. These run Decode on the reader the gateway decodes from.
var _ protocol.Reader = (*netpoll.LinkBuffer)(nil)

func feedLinkBuffer(t *testing.T, lb *netpoll.LinkBuffer, p []byte) {
	t.Helper()
	if _, err := lb.WriteBinary(p); err != nil {
		t.Fatal(err)
	}
	if err := lb.Flush(); err != nil {
		t.Fatal(err)
	}
}

// Frames arriving a byte at a time come out whole, once, in order, and stay intact after the
// buffer releases (and netpoll reuses) the bytes they were decoded from.
func TestDecodeFromLinkBuffer(t *testing.T) {
	frames := []*pb.Frame{
		{Seq: 1, Body: &pb.Frame_Ping{Ping: &pb.Ping{ClientTimeMs: 42}}},
		{Seq: 2, Body: &pb.Frame_Request{Request: &pb.Request{Service: "chat", Method: "send", Payload: bytes.Repeat([]byte("x"), 3000)}}},
		{Body: &pb.Frame_PushAck{PushAck: &pb.PushAck{MessageId: "m1"}}},
	}
	var wire []byte
	for _, f := range frames {
		var err error
		if wire, err = protocol.Append(wire, f, 1<<16); err != nil {
			t.Fatal(err)
		}
	}
	lb := netpoll.NewLinkBuffer()
	var got []*pb.Frame
	for i := range wire {
		feedLinkBuffer(t, lb, wire[i:i+1])
		for {
			f, err := protocol.Decode(lb, 1<<16)
			if err != nil {
				t.Fatalf("after %d bytes: %v", i+1, err)
			}
			if f == nil {
				break
			}
			got = append(got, f)
			if err := lb.Release(); err != nil {
				t.Fatal(err)
			}
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
	if lb.Len() != 0 {
		t.Errorf("%d bytes left over", lb.Len())
	}
}

// BenchmarkDecode decodes a REQUEST frame (service "echo", method "bench", the payload sizes of
// the load benchmarks, as sdk/go/protocol's BenchmarkAppend and BenchmarkRead) from a netpoll
// LinkBuffer, the gateway's reader: each iteration writes the frame's bytes into the buffer,
// decodes it and releases the buffer, as one onRequest call does.
func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name    string
		payload int
	}{{"128B", 128}, {"1KiB", 1024}} {
		b.Run(bc.name, func(b *testing.B) {
			f := &pb.Frame{Seq: 123456, Body: &pb.Frame_Request{Request: &pb.Request{
				Service: "echo", Method: "bench", Payload: bytes.Repeat([]byte("x"), bc.payload),
			}}}
			wire, err := protocol.Append(nil, f, 1<<16)
			if err != nil {
				b.Fatal(err)
			}
			lb := netpoll.NewLinkBuffer()
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := lb.WriteBinary(wire); err != nil {
					b.Fatal(err)
				}
				if err := lb.Flush(); err != nil {
					b.Fatal(err)
				}
				f, err := protocol.Decode(lb, 1<<16)
				if err != nil || f == nil {
					b.Fatalf("Decode = %v, %v", f, err)
				}
				if err := lb.Release(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
