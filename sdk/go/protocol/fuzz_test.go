package protocol_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// FuzzDecode feeds every input to the decoder whole and split in two at a fuzzed point (a
// partial read), and checks both ways yield the same frames or the same error, that nothing
// panics, and that every decoded frame re-encodes to a frame that decodes equal.
func FuzzDecode(f *testing.F) {
	for _, g := range goldenFrames {
		wire, err := protocol.Append(nil, g.frame, maxBody)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire, uint16(len(wire)/2))
	}
	f.Add([]byte{0, 0, 0, 0}, uint16(2))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1}, uint16(1))

	f.Fuzz(func(t *testing.T, wire []byte, split uint16) {
		const max = 4096
		whole, wholeErr := decodeAll([][]byte{wire}, max)
		cut := int(split) % (len(wire) + 1)
		parts, partsErr := decodeAll([][]byte{wire[:cut], wire[cut:]}, max)

		if (wholeErr == nil) != (partsErr == nil) {
			t.Fatalf("whole: %v; split at %d: %v", wholeErr, cut, partsErr)
		}
		if len(whole) != len(parts) {
			t.Fatalf("whole gave %d frames, split at %d gave %d", len(whole), cut, len(parts))
		}
		for i := range whole {
			if !proto.Equal(whole[i], parts[i]) {
				t.Fatalf("frame %d differs when split", i)
			}
			again, err := protocol.Append(nil, whole[i], 1<<20)
			if err != nil {
				t.Fatalf("re-encoding frame %d: %v", i, err)
			}
			back, _ := decodeAll([][]byte{again}, 1<<20)
			if len(back) != 1 || !proto.Equal(back[0], whole[i]) {
				t.Fatalf("frame %d does not survive re-encoding", i)
			}
		}
	})
}

// decodeAll delivers chunks one after the other and decodes greedily after each, like the
// gateway's OnRequest does as bytes arrive. It stops at the first error.
func decodeAll(chunks [][]byte, max int) ([]*pb.Frame, error) {
	buf := &streamReader{}
	var out []*pb.Frame
	for _, c := range chunks {
		if len(c) > 0 {
			buf.write(c)
		}
		for {
			f, err := protocol.Decode(buf, max)
			if err != nil {
				return out, err
			}
			if f == nil {
				break
			}
			out = append(out, f)
		}
	}
	return out, nil
}
