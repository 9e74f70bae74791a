// Package receipts reads a TCPGateway's receipts topic from its end: the push SDK waits on it
// for acks, replies and expiries. (The gateways read the topic differently, as the members of a
// consumer group that share its partitions: gateway/downlink's expiry tracker.)
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

	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Watcher reads every partition of a receipts topic from where each ended when the watcher
// started. It uses plain partition readers, not a consumer group: a group's assignment
// completes at an unknown time after start, and a receipt written before it would be missed.
type Watcher struct {
	readers []*kafka.Reader
	wg      sync.WaitGroup
}

// Watch starts reading with sec's TLS and SASL, naming its connections clientID in the
// brokers' logs and quotas; handle is called for every receipt, from the readers' goroutines.
// A broker refusing sec (kafkasec.Reason says which way) fails it.
func Watch(ctx context.Context, brokers []string, sec kafkasec.Security, clientID, topic string, handle func(*pb.Receipt)) (*Watcher, error) {
	tr := sec.Transport(clientID, 10*time.Second)
	defer tr.CloseIdleConnections() // the readers dial their own connections
	ends, err := endOffsets(ctx, &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: tr}, topic)
	if err != nil {
		return nil, err
	}
	w := &Watcher{}
	dialer := sec.Dialer(clientID, 10*time.Second)
	for _, po := range ends {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: brokers, Dialer: dialer, Topic: topic, Partition: po.Partition,
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

// endOffsets returns where every partition of topic ends. Errors Kafka calls temporary — a
// topic created a moment ago whose leaders are not elected or known everywhere yet ("Not
// Leader For Partition", "Leader Not Available", "Unknown Topic Or Partition") — are retried
// until ctx ends.
func endOffsets(ctx context.Context, client *kafka.Client, topic string) ([]kafka.PartitionOffsets, error) {
	backoff := 50 * time.Millisecond
	for {
		ends, err := endOffsetsOnce(ctx, client, topic)
		var kerr kafka.Error
		if err == nil || !errors.As(err, &kerr) || !kerr.Temporary() {
			return ends, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (still failing when %w)", err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func endOffsetsOnce(ctx context.Context, client *kafka.Client, topic string) ([]kafka.PartitionOffsets, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("receipts: while reading topic metadata: %w", err)
	}
	var parts []kafka.OffsetRequest
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("receipts: topic %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			parts = append(parts, kafka.LastOffsetOf(p.ID))
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("receipts: topic %s has no partitions (does it exist?)", topic)
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: parts}})
	if err != nil {
		return nil, fmt.Errorf("receipts: while listing offsets: %w", err)
	}
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("receipts: partition %d: %w", po.Partition, po.Error)
		}
	}
	return offs.Topics[topic], nil
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
