package hostile

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Finding 6: a resume naming unknown partitions (999), offsets beyond the high watermark or
// negative offsets was accepted silently. Each such position is now answered in
// ResumeResult.rejected, and nothing is replayed for its partition.
func TestResumeWithImpossiblePositions(t *testing.T) {
	g := Start(t, Options{Kafka: true, Partitions: 3})
	first := g.Dial()
	ack := first.Handshake(g.Token("alice"), nil)
	if len(ack.Positions) != 3 {
		t.Fatalf("watermarks %v, want 3 partitions", ack.Positions)
	}
	first.Close()

	lies := []*pb.Position{
		{Partition: 999, Offset: 0},
		{Partition: 0, Offset: -5},
		{Partition: 1, Offset: 1 << 40},
	}
	c := g.Dial()
	resumed := c.Handshake(g.Token("alice"), func(hs *pb.Handshake) {
		hs.SessionId = ack.SessionId
		hs.Resume = &pb.Resume{Positions: append(lies, &pb.Position{Partition: 2, Offset: ack.Positions[2].Offset})}
	})
	r := resumed.GetResume()
	if r.GetStatus() != pb.ResumeResult_STATUS_COMPLETE || len(r.GetRejected()) != len(lies) {
		t.Fatalf("resume result %v, want COMPLETE with %d rejected positions", r, len(lies))
	}
	for i, p := range r.GetRejected() {
		if !proto.Equal(p, lies[i]) {
			t.Errorf("rejected[%d] = %v, want %v", i, p, lies[i])
		}
	}
	c.expectNothingQueued(1)
}
