// Package receipts reads a TCPGateway's receipts topic: the push SDK waits on it for acks and
// replies, and gateways use it to learn about acks written by other pods.
package receipts

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

// Watcher reads every partition of a receipts topic from where each ended when the watcher
// started. It uses plain partition readers, not a consumer group: a group's assignment
// completes at an unknown time after start, and a receipt written before it would be missed.
type Watcher struct {
	readers []*kafka.Reader
	wg      sync.WaitGroup
}

// Watch starts reading; handle is called for every receipt, from the readers' goroutines.
func Watch(ctx context.Context, brokers []string, topic string, handle func(*pb.Receipt)) (*Watcher, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("receipts: while reading topic metadata: %w", err)
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
		return nil, fmt.Errorf("receipts: topic %s has no partitions (does it exist?)", topic)
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: parts}})
	if err != nil {
		return nil, fmt.Errorf("receipts: while listing offsets: %w", err)
	}
	w := &Watcher{}
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			w.Close()
			return nil, fmt.Errorf("receipts: partition %d: %w", po.Partition, po.Error)
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: brokers, Topic: topic, Partition: po.Partition,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 500 * time.Millisecond,
			MaxAttempts: 1 << 30, // keep retrying while the broker is away
		})
		if err := r.SetOffset(po.LastOffset); err != nil {
			_ = r.Close()
			w.Close()
			return nil, err
		}
		w.readers = append(w.readers, r)
		w.wg.Add(1)
		go w.run(r, handle)
	}
	return w, nil
}

func (w *Watcher) run(r *kafka.Reader, handle func(*pb.Receipt)) {
	defer w.wg.Done()
	for {
		m, err := r.ReadMessage(context.Background())
		if err != nil {
			if errors.Is(err, io.EOF) {
				return // closed
			}
			continue
		}
		rc := &pb.Receipt{}
		if proto.Unmarshal(m.Value, rc) == nil {
			handle(rc)
		}
	}
}

// Close stops the readers.
func (w *Watcher) Close() {
	for _, r := range w.readers {
		_ = r.Close()
	}
	w.wg.Wait()
}
