package downlink

import (
	"container/heap"
	"sync"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/protocol/pb"
	"github.com/tcpgateway/tcpgateway/gateway/session"
)

// pendingAcks remembers the deliveries this pod made of records that asked for an ack or a
// reply and carry an expiry, until an answer arrives — on this pod, or on another one after the
// client moved, which this pod learns from the receipts topic. When the expiry passes
// unanswered (the client never came back, or never answered), the pod writes an EXPIRED
// receipt, so the publisher learns the message will not be answered.
type pendingAcks struct {
	mu    sync.Mutex // guards byKey, queue
	max   int
	byKey map[ackKey]*pendingAck
	queue expiryQueue
}

type ackKey struct{ message, session string }

type pendingAck struct {
	key     ackKey
	user    string
	d       *pb.Downlink
	pos     *pb.Position
	expires time.Time
	index   int // in queue
}

func newPendingAcks(max int) *pendingAcks {
	return &pendingAcks{max: max, byKey: map[ackKey]*pendingAck{}}
}

// add tracks a delivery to s; it reports false when the table is full (the delivery is not
// tracked: its publisher falls back to its own timeout).
func (p *pendingAcks) add(d *pb.Downlink, s *session.Session, pos *pb.Position) bool {
	if d.ExpiresAtMs == 0 || !(d.AckRequired || d.ReplyExpected) {
		return true
	}
	k := ackKey{d.MessageId, s.SessionID}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.byKey[k]; ok {
		return true
	}
	if len(p.byKey) >= p.max {
		return false
	}
	pa := &pendingAck{key: k, user: s.UserID, d: d, pos: pos, expires: time.UnixMilli(d.ExpiresAtMs)}
	p.byKey[k] = pa
	heap.Push(&p.queue, pa)
	return true
}

// answered forgets a delivery the client acked or replied to.
func (p *pendingAcks) answered(messageID, sessionID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pa, ok := p.byKey[ackKey{messageID, sessionID}]; ok {
		heap.Remove(&p.queue, pa.index)
		delete(p.byKey, pa.key)
	}
}

// expired removes and returns the deliveries whose expiry has passed.
func (p *pendingAcks) expired(now time.Time) []*pendingAck {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*pendingAck
	for len(p.queue) > 0 && !p.queue[0].expires.After(now) {
		pa := heap.Pop(&p.queue).(*pendingAck)
		delete(p.byKey, pa.key)
		out = append(out, pa)
	}
	return out
}

func (p *pendingAcks) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byKey)
}

// expiryQueue is a min-heap of pending acks by expiry.
type expiryQueue []*pendingAck

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].expires.Before(q[j].expires) }
func (q expiryQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *expiryQueue) Push(x any) {
	pa := x.(*pendingAck)
	pa.index = len(*q)
	*q = append(*q, pa)
}
func (q *expiryQueue) Pop() any {
	old := *q
	pa := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return pa
}
