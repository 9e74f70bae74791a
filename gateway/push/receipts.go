package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/protocol/pb"
)

// receiptWatcher reads every partition of the receipts topic from where it was when the
// publisher started, and hands receipts to the calls waiting for their message id. It uses
// plain partition readers rather than a consumer group: a group's assignment completes at an
// unknown time after start, and a receipt written before it would be missed.
type receiptWatcher struct {
	readers []*kafka.Reader
	wg      sync.WaitGroup

	mu      sync.Mutex
	waiting map[string]chan *pb.Receipt
}

func watchReceipts(ctx context.Context, brokers []string, topic string) (*receiptWatcher, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("push: while reading receipts topic metadata: %w", err)
	}
	var parts []kafka.OffsetRequest
	for _, t := range md.Topics {
		if t.Name == topic && t.Error == nil {
			for _, p := range t.Partitions {
				parts = append(parts, kafka.LastOffsetOf(p.ID))
			}
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("push: receipts topic %s has no partitions (does it exist?)", topic)
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: parts}})
	if err != nil {
		return nil, fmt.Errorf("push: while listing receipts offsets: %w", err)
	}
	rw := &receiptWatcher{waiting: map[string]chan *pb.Receipt{}}
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			rw.close()
			return nil, fmt.Errorf("push: receipts partition %d: %w", po.Partition, po.Error)
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: brokers, Topic: topic, Partition: po.Partition,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 500 * time.Millisecond,
			MaxAttempts: 1 << 30,
		})
		if err := r.SetOffset(po.LastOffset); err != nil {
			rw.close()
			return nil, err
		}
		rw.readers = append(rw.readers, r)
		rw.wg.Add(1)
		go rw.run(r)
	}
	return rw, nil
}

func (rw *receiptWatcher) run(r *kafka.Reader) {
	defer rw.wg.Done()
	for {
		m, err := r.ReadMessage(context.Background())
		if err != nil {
			if errors.Is(err, io.EOF) {
				return // closed
			}
			continue
		}
		var rc pb.Receipt
		if proto.Unmarshal(m.Value, &rc) != nil {
			continue
		}
		rw.mu.Lock()
		ch := rw.waiting[rc.MessageId]
		rw.mu.Unlock()
		if ch != nil {
			select {
			case ch <- &rc:
			default: // the waiter has what it needs; extra receipts are dropped
			}
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

func (rw *receiptWatcher) close() {
	for _, r := range rw.readers {
		_ = r.Close()
	}
	rw.wg.Wait()
}
