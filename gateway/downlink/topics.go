package downlink

import (
	"context"
	"errors"
	"time"

	"github.com/segmentio/kafka-go"
)

// Bounds of the wait while a topic is missing.
const (
	// topicsMissingLogInterval: while the topics are missing, the logs say so at most this
	// often (the readiness reason and tcpgw_kafka_topics_missing say it all the time).
	topicsMissingLogInterval = time.Minute
	// expiryTopicBackoffMax caps the expiry group's wait between two joins while the
	// receipts topic is missing; the wait starts at JoinGroupBackoff and doubles.
	expiryTopicBackoffMax = 15 * time.Second
)

// missingTopics asks Kafka which of topics do not exist. The error is non-nil only when Kafka
// did not answer.
func missingTopics(ctx context.Context, client *kafka.Client, topics ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, err
	}
	return absentTopics(md, topics)
}

// absentTopics reads a metadata answer: the topics it does not know. Any other topic error
// (e.g. authorization) is returned as an error.
func absentTopics(md *kafka.MetadataResponse, topics []string) ([]string, error) {
	known := map[string]bool{}
	for _, t := range md.Topics {
		switch {
		case t.Error == nil:
			known[t.Name] = true
		case errors.Is(t.Error, kafka.UnknownTopicOrPartition):
		default:
			return nil, t.Error
		}
	}
	var missing []string
	for _, t := range topics {
		if !known[t] {
			missing = append(missing, t)
		}
	}
	return missing, nil
}

// nextBackoff doubles the wait, from lo, capped at hi.
func nextBackoff(cur, lo, hi time.Duration) time.Duration {
	if cur < lo {
		return lo
	}
	return min(2*cur, hi)
}
