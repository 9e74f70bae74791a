//go:build !race

package server

import "testing"

// TestWSWriteNowAllocatesNothing: a direct write takes its scratch from a pool and hands
// RawConn.Write a func bound once, so the deliverer's write allocates nothing per session.
// (Not under the race detector, whose sync.Pool drops items at random.)
func TestWSWriteNowAllocatesNothing(t *testing.T) {
	d, _ := wsPair(t)
	frames := [][]byte{[]byte("frame one"), make([]byte, 200)}
	if allocs := testing.AllocsPerRun(100, func() {
		if n, err := d.WriteNow(frames); n != 209 || err != nil {
			t.Fatalf("WriteNow: %d, %v", n, err)
		}
	}); allocs != 0 {
		t.Fatalf("%.1f allocations per WriteNow, want 0", allocs)
	}
}
