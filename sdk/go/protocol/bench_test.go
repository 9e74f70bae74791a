package protocol_test

import (
	"bufio"
	"bytes"
	"fmt"
	"testing"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Micro-benchmarks of the codec on REQUEST frames of the payload sizes the load benchmarks use
// (docs/benchmarks.md; Decode from the gateway's netpoll buffers is in gateway/server):
//
//	cd sdk/go && go test -run '^$' -bench . -benchmem ./protocol/

var benchPayloads = []int{128, 1024}

const benchMaxBody = 1 << 16

func benchRequest(payload int) *pb.Frame {
	return &pb.Frame{Seq: 123456, Body: &pb.Frame_Request{Request: &pb.Request{
		Service: "echo", Method: "bench", Payload: bytes.Repeat([]byte("x"), payload),
	}}}
}

func benchName(payload int) string {
	if payload >= 1024 && payload%1024 == 0 {
		return fmt.Sprintf("%dKiB", payload/1024)
	}
	return fmt.Sprintf("%dB", payload)
}

// BenchmarkAppend encodes a REQUEST frame into a reused buffer, as the SDK and the gateway's
// senders do (they allocate a new buffer per frame; here only the codec is measured).
func BenchmarkAppend(b *testing.B) {
	for _, n := range benchPayloads {
		b.Run(benchName(n), func(b *testing.B) {
			f := benchRequest(n)
			buf, err := protocol.Append(nil, f, benchMaxBody)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if buf, err = protocol.Append(buf[:0], f, benchMaxBody); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRead decodes a REQUEST frame from a bufio.Reader with a reused body buffer, the
// blocking path of the client SDK (and of the benchmark's goroutine-per-connection baseline).
func BenchmarkRead(b *testing.B) {
	for _, n := range benchPayloads {
		b.Run(benchName(n), func(b *testing.B) {
			wire, err := protocol.Append(nil, benchRequest(n), benchMaxBody)
			if err != nil {
				b.Fatal(err)
			}
			src := bytes.NewReader(wire)
			r := bufio.NewReaderSize(src, 4096)
			var body []byte
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(wire)
				r.Reset(src)
				var f *pb.Frame
				if f, body, err = protocol.Read(r, benchMaxBody, body); err != nil || f == nil {
					b.Fatalf("Read = %v, %v", f, err)
				}
			}
		})
	}
}
