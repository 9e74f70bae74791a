// Command kafkatopics creates Kafka topics for the demo (the operator does this in a cluster).
// Topics that exist already are left as they are.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap servers, comma-separated")
	partitions := flag.Int("partitions", 3, "partitions per topic")
	flag.Parse()
	if err := create(strings.Split(*brokers, ","), *partitions, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "kafkatopics:", err)
		os.Exit(1)
	}
}

func create(brokers []string, partitions int, topics []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: 1})
	}
	res, err := (&kafka.Client{Addr: kafka.TCP(brokers...)}).CreateTopics(ctx, req)
	if err != nil {
		return err
	}
	for topic, err := range res.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("topic %s: %w", topic, err)
		}
	}
	return nil
}
