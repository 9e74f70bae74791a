package downlink

import (
	"context"

	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// learnEndsAhead makes the partition ends a resume is judged against current before it is
// judged. A client that moves from a pod that has read further than this one (a drain or a
// crash during a burst) names offsets this pod has not read yet and whose end it learnt before
// they were written: judged on that stale end, a real record would count as beyond the end and
// be rejected. Such a position is asked about Kafka, whose end is past every record any pod
// delivered; when it is below the end, the records up to it come from this pod's reader after
// the ack and the client drops them by position (R17), so nothing is replayed and nothing was
// lost. Lookups of concurrent resumes are shared; one that started before the call may predate
// the client's record, so a position still ahead after it gets a second, later lookup. When
// Kafka does not answer within ctx, the positions are judged on what this pod knows.
func (c *Consumer) learnEndsAhead(ctx context.Context, positions []*pb.Position) {
	for range 2 {
		if !c.aheadOfEnd(positions) {
			return
		}
		ch := c.ends.DoChan("ends", c.lookUpEnds)
		select {
		case res := <-ch:
			if res.Err != nil {
				c.log.Warn("cannot look up partition ends for a resume; positions this pod has not read are rejected", "err", res.Err)
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// aheadOfEnd reports whether a position names an offset at or beyond the end of a partition
// this pod reads, as far as it knows.
func (c *Consumer) aheadOfEnd(positions []*pb.Position) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range positions {
		if r, ok := c.win.parts[int(p.GetPartition())]; ok && p.GetOffset() >= max(r.next, r.end) {
			return true
		}
	}
	return false
}

// lookUpEnds asks the partition leaders for the end offsets of every partition this pod reads.
func (c *Consumer) lookUpEnds() (any, error) {
	c.mu.Lock()
	reqs := make([]kafka.OffsetRequest, 0, len(c.win.parts))
	for p := range c.win.parts {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	res, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{c.o.Topic: reqs}})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, po := range res.Topics[c.o.Topic] {
		if po.Error != nil {
			continue // judged on what this pod knows
		}
		if r, ok := c.win.parts[po.Partition]; ok {
			r.learnEnd(po.LastOffset)
		}
	}
	return nil, nil
}
