package push

import (
	"context"
	"sync"

	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/receipts"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// receiptWatcher hands receipts to the calls waiting for their message id.
type receiptWatcher struct {
	w *receipts.Watcher

	mu      sync.Mutex
	waiting map[string]chan *pb.Receipt
}

func watchReceipts(ctx context.Context, brokers []string, sec kafkasec.Security, clientID, topic string) (*receiptWatcher, error) {
	rw := &receiptWatcher{waiting: map[string]chan *pb.Receipt{}}
	w, err := receipts.Watch(ctx, brokers, sec, clientID, topic, rw.dispatch)
	if err != nil {
		return nil, err
	}
	rw.w = w
	return rw, nil
}

func (rw *receiptWatcher) dispatch(rc *pb.Receipt) {
	rw.mu.Lock()
	ch := rw.waiting[rc.MessageId]
	rw.mu.Unlock()
	if ch != nil {
		select {
		case ch <- rc:
		default: // the waiter has what it needs; extra receipts are dropped
		}
	}
}

// wait registers interest in a message id; call cancel when done.
func (rw *receiptWatcher) wait(id string) (<-chan *pb.Receipt, func()) {
	ch := make(chan *pb.Receipt, 16)
	rw.mu.Lock()
	rw.waiting[id] = ch
	rw.mu.Unlock()
	return ch, func() {
		rw.mu.Lock()
		delete(rw.waiting, id)
		rw.mu.Unlock()
	}
}

func (rw *receiptWatcher) close() { rw.w.Close() }
