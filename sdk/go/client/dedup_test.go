package client_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// TestDuplicateMessageIDDeliveredOnce: a publisher that retried wrote the same message twice,
// at two positions; the app sees it once. The window is bounded: an id older than the last
// DedupWindow ids is delivered again.
func TestDuplicateMessageIDDeliveredOnce(t *testing.T) {
	g := newFakeGateway(t)
	var mu sync.Mutex
	var got []string
	connected := connectAsync(t, client.Options{
		Addr: g.addr(), Token: "t", DedupWindow: 3, Reconnect: fastReconnect,
		OnPush: func(p *client.Push) {
			mu.Lock()
			got = append(got, fmt.Sprintf("%s@%d/%d", p.MessageId, p.Position.GetPartition(), p.Position.GetOffset()))
			mu.Unlock()
		},
	})
	gw := g.accept()
	gw.handshake()
	gw.ack()
	connected()
	push := func(id string, partition int32, offset int64) {
		gw.write(&pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{MessageId: id, Payload: []byte(id),
			Position: &pb.Position{Partition: partition, Offset: offset}}}})
	}
	push("m1", 0, 1)
	push("m1", 0, 2) // the retry's record, next offset
	push("m1", 1, 7) // or another partition
	push("m1", 0, 2) // a replay of a position already seen
	push("m2", 0, 3)
	push("m3", 0, 4)
	push("m4", 0, 5) // the window (3) now holds m2, m3, m4
	push("m1", 0, 6) // forgotten: delivered again
	push("end", 0, 8)
	want := []string{"m1@0/1", "m2@0/3", "m3@0/4", "m4@0/5", "m1@0/6", "end@0/8"}
	waitFor(t, timeout, "the last push", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1] == "end@0/8"
	})
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}
