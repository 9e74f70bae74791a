package downlink

import (
	"maps"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

func rec(p int, off int64, at time.Time, t *pb.Target) record {
	return record{partition: p, offset: off, at: at, d: &pb.Downlink{MessageId: "m", Target: t}}
}

func TestWindowReplaysTheGapForTheSessionOnly(t *testing.T) {
	now := time.Unix(1000, 0)
	alice := &pb.Target{Kind: &pb.Target_UserId{UserId: "alice"}}
	bob := &pb.Target{Kind: &pb.Target_UserId{UserId: "bob"}}
	all := &pb.Target{Kind: &pb.Target_All{All: true}}
	beta := &pb.Target{Kind: &pb.Target_Group{Group: "beta"}}

	w := window{maxAge: time.Minute, parts: map[int]*ring{0: newRing(4, 10, 10), 1: newRing(10, 0, 0)}}
	for off := int64(10); off < 16; off++ { // partition 0 holds 12..15 (capacity 4)
		target := alice
		if off%2 == 1 {
			target = bob
		}
		w.parts[0].push(rec(0, off, now, target))
		w.parts[0].next = off + 1
	}
	for off, target := range []*pb.Target{all, beta, bob} {
		w.parts[1].push(rec(1, int64(off), now, target))
		w.parts[1].next = int64(off) + 1
	}
	s := &session.Session{}
	s.Identity = session.Identity{SessionID: "s", UserID: "alice", Groups: []string{"beta"}}

	tests := []struct {
		name      string
		positions []*pb.Position
		want      []int64 // offsets replayed, partition 0 then 1
		status    pb.ResumeResult_Status
		rejected  []*pb.Position
	}{
		{"caught up", []*pb.Position{{Partition: 0, Offset: 15}, {Partition: 1, Offset: 2}}, nil, pb.ResumeResult_STATUS_COMPLETE, nil},
		{"gap inside the window", []*pb.Position{{Partition: 0, Offset: 12}, {Partition: 1, Offset: 0}}, []int64{14, 1}, pb.ResumeResult_STATUS_COMPLETE, nil},
		{"gap older than the window", []*pb.Position{{Partition: 0, Offset: 9}, {Partition: 1, Offset: 2}}, []int64{12, 14}, pb.ResumeResult_STATUS_NOT_RECOVERED, nil},
		{"partition never seen", []*pb.Position{{Partition: 0, Offset: 15}}, []int64{0, 1}, pb.ResumeResult_STATUS_COMPLETE, nil},
		// A hostile (or confused) client's positions: answered, never replayed from.
		{"unknown partition", []*pb.Position{{Partition: 999, Offset: 5}, {Partition: 0, Offset: 15}, {Partition: 1, Offset: 2}},
			nil, pb.ResumeResult_STATUS_COMPLETE, []*pb.Position{{Partition: 999, Offset: 5}}},
		{"beyond the end", []*pb.Position{{Partition: 0, Offset: 16}, {Partition: 1, Offset: 0}}, []int64{1},
			pb.ResumeResult_STATUS_COMPLETE, []*pb.Position{{Partition: 0, Offset: 16}}},
		{"below -1", []*pb.Position{{Partition: 0, Offset: -7}, {Partition: 1, Offset: 2}}, nil,
			pb.ResumeResult_STATUS_COMPLETE, []*pb.Position{{Partition: 0, Offset: -7}}},
		{"named twice", []*pb.Position{{Partition: 0, Offset: 12}, {Partition: 0, Offset: 9}, {Partition: 1, Offset: 2}}, nil,
			pb.ResumeResult_STATUS_COMPLETE, []*pb.Position{{Partition: 0, Offset: 9}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, res := w.replayLocked(s, tt.positions, now)
			var offsets []int64
			for _, r := range got {
				offsets = append(offsets, r.offset)
			}
			if len(offsets) != len(tt.want) {
				t.Fatalf("replayed %v, want %v", offsets, tt.want)
			}
			for i := range offsets {
				if offsets[i] != tt.want[i] {
					t.Fatalf("replayed %v, want %v", offsets, tt.want)
				}
			}
			if res.Status != tt.status {
				t.Errorf("status %v, want %v (%v)", res.Status, tt.status, res.NotRecovered)
			}
			if !slices.EqualFunc(res.Rejected, tt.rejected, func(a, b *pb.Position) bool { return proto.Equal(a, b) }) {
				t.Errorf("rejected %v, want %v", res.Rejected, tt.rejected)
			}
		})
	}
	if wm := w.watermarksLocked(); len(wm) != 2 || wm[0].Offset != 15 || wm[1].Offset != 2 {
		t.Errorf("watermarks %v", wm)
	}
}

func TestWindowForgetsRecordsOlderThanMaxAge(t *testing.T) {
	now := time.Unix(1000, 0)
	w := window{maxAge: time.Minute, parts: map[int]*ring{0: newRing(10, 0, 0)}}
	w.parts[0].push(rec(0, 0, now.Add(-2*time.Minute), &pb.Target{Kind: &pb.Target_All{All: true}}))
	w.parts[0].push(rec(0, 1, now, &pb.Target{Kind: &pb.Target_All{All: true}}))
	w.parts[0].next = 2
	got, res := w.replayLocked(&session.Session{}, []*pb.Position{{Partition: 0, Offset: -1}}, now)
	if len(got) != 1 || got[0].offset != 1 || res.Status != pb.ResumeResult_STATUS_NOT_RECOVERED {
		t.Fatalf("replayed %d records (%v), want only offset 1 and NOT_RECOVERED", len(got), res)
	}
}

func TestWindowFindsTheAnsweredPush(t *testing.T) {
	w := window{maxAge: time.Hour, parts: map[int]*ring{2: newRing(4, 10, 10)}}
	for off := int64(10); off < 16; off++ { // 10 and 11 fall out of the ring
		w.parts[2].push(record{partition: 2, offset: off, d: &pb.Downlink{MessageId: "m" + string(rune('0'+off-10)), ExpiresAtMs: 1000 + off}})
	}
	for _, tt := range []struct {
		partition int32
		offset    int64
		id        string
		want      int64
	}{
		{2, 13, "m3", 1013},
		{2, 15, "m5", 1015},
		{2, 13, "m4", 0}, // another message at that position: a client's mistake
		{2, 11, "m1", 0}, // no longer held
		{2, 16, "m6", 0}, // not read yet
		{3, 13, "m3", 0}, // unknown partition
	} {
		var got int64
		if rec := w.findLocked(&pb.Position{Partition: tt.partition, Offset: tt.offset}, tt.id); rec != nil {
			got = rec.d.ExpiresAtMs
		}
		if got != tt.want {
			t.Errorf("expiry of %s at %d/%d = %d, want %d", tt.id, tt.partition, tt.offset, got, tt.want)
		}
	}
}

// TestWindowWatermarksFollowEveryChange: the watermark list is made once and handed out again
// while nothing moved (handshakes on a quiet pod), and made anew when a partition's watermark
// moves or the partitions change, without touching lists already handed out.
func TestWindowWatermarksFollowEveryChange(t *testing.T) {
	w := window{maxAge: time.Minute, parts: map[int]*ring{0: newRing(4, 10, 10), 1: newRing(4, 0, 0)}}
	offsets := func(wm []*pb.Position) map[int32]int64 {
		m := map[int32]int64{}
		for i, p := range wm {
			if i > 0 && wm[i-1].Partition >= p.Partition {
				t.Fatalf("watermarks not in partition order: %v", wm)
			}
			m[p.Partition] = p.Offset
		}
		return m
	}
	first := w.watermarksLocked()
	if got, want := offsets(first), map[int32]int64{0: 9, 1: -1}; !maps.Equal(got, want) {
		t.Fatalf("watermarks %v, want %v", got, want)
	}
	if again := w.watermarksLocked(); &again[0] != &first[0] {
		t.Error("unchanged watermarks were made again")
	}
	steps := []struct {
		name   string
		change func()
		want   map[int32]int64
	}{
		{"a watermark moves", func() { w.parts[0].next = 12 }, map[int32]int64{0: 11, 1: -1}},
		{"a partition is added", func() { w.parts[2] = newRing(4, 5, 5) }, map[int32]int64{0: 11, 1: -1, 2: 4}},
		{"a partition is replaced by another", func() { delete(w.parts, 1); w.parts[3] = newRing(4, 0, 0) }, map[int32]int64{0: 11, 2: 4, 3: -1}},
		{"a partition is removed", func() { delete(w.parts, 3) }, map[int32]int64{0: 11, 2: 4}},
		{"the same count, another partition's watermark", func() { w.parts[2].next = 100 }, map[int32]int64{0: 11, 2: 99}},
	}
	for _, st := range steps {
		st.change()
		if got := offsets(w.watermarksLocked()); !maps.Equal(got, st.want) {
			t.Errorf("%s: watermarks %v, want %v", st.name, got, st.want)
		}
	}
	if got := offsets(first); !maps.Equal(got, map[int32]int64{0: 9, 1: -1}) {
		t.Errorf("a list handed out was modified: %v", got)
	}
}
