package server

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/cloudwego/netpoll"
)

// TestSocketWriteKeepsEveryByteInOrder writes batches that netpoll takes uncopied (up to
// directFrames frames) and batches it copies, alternating so that each kind follows the
// other, and checks that the peer reads exactly the bytes written, in order.
func TestSocketWriteKeepsEveryByteInOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := netpoll.DialConnection("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()

	k := &socket{nc: nc}
	var want bytes.Buffer
	next := byte(0)
	for _, frames := range []int{1, directFrames, directFrames + 1, 2, 100, directFrames, 3} {
		bufs := make([][]byte, frames)
		for i := range bufs {
			b := make([]byte, 1+(int(next)*37)%3000) // 1 B to 3 KiB: within and across buffer nodes
			for j := range b {
				b[j] = next
				next++
			}
			bufs[i] = b
			want.Write(b)
		}
		if err := k.Write(bufs); err != nil {
			t.Fatalf("write of %d frames: %v", frames, err)
		}
	}
	got := make([]byte, want.Len())
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the peer read other bytes than were written")
	}
}
