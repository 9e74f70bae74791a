package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
)

// KafkaCluster is how to reach a Kafka cluster: its bootstrap brokers and the TLS and SASL
// to speak to them (the gateway's own, from the Secrets spec.kafka references).
type KafkaCluster struct {
	Brokers  []string
	Security kafkasec.Security
}

// TopicSpec is a topic as the TCPGateway wants it.
type TopicSpec struct {
	Name       string
	Partitions int
	// ReplicationFactor for a new topic; capped to the number of brokers (see KafkaTopics).
	ReplicationFactor int
	// Retention becomes retention.ms; zero leaves the broker's default.
	Retention time.Duration
}

// TopicState is a topic as Ensure left it.
type TopicState struct {
	Name string
	// Partitions the topic has now: at least the requested count, more if it already had more.
	Partitions int
	// Created is set when Ensure created the topic.
	Created bool
	// GrownFrom is the partition count before Ensure added partitions, 0 if it added none.
	GrownFrom int
	// RetentionUpdated is set when Ensure changed retention.ms of an existing topic.
	RetentionUpdated bool
}

// TopicResult is what Ensure did and found.
type TopicResult struct {
	Topics []TopicState
	// Brokers is the number of brokers the cluster reports.
	Brokers int
	// ReplicationCapped is set when the cluster has fewer brokers than the replication factor
	// asked for, so topics are created with one replica per broker. It describes the
	// cluster, not this call, so it reads the same on every Ensure.
	ReplicationCapped bool
}

// TopicManager keeps Kafka topics in line with their TopicSpecs.
type TopicManager interface {
	// Ensure creates missing topics, adds partitions to topics that have fewer than
	// requested (never removes any: Kafka cannot, and a topic with more is fine), and sets
	// retention.ms. Errors wrap ErrKafkaUnreachable, and the kafka-go or TLS error that
	// kafkasec.Reason names, when a request did not complete (no broker answered, TLS or SASL
	// failed); otherwise they are *TopicError.
	Ensure(ctx context.Context, k KafkaCluster, topics []TopicSpec) (TopicResult, error)
	// Delete deletes the topics; topics that do not exist are not an error.
	Delete(ctx context.Context, k KafkaCluster, topics []string) error
}

// ErrKafkaUnreachable is wrapped by errors that mean a request to the brokers did not
// complete: none answered, or the TLS handshake or the SASL exchange failed (the wrapped cause
// says which; see kafkaReason).
var ErrKafkaUnreachable = errors.New("kafka unreachable")

// TopicError is a Kafka refusal about one topic.
type TopicError struct {
	Topic string
	// Op is what was attempted: "create", "add partitions to", "configure", "describe",
	// "delete".
	Op  string
	Err error
}

func (e *TopicError) Error() string {
	return fmt.Sprintf("while trying to %s topic %q: %v", e.Op, e.Topic, e.Err)
}
func (e *TopicError) Unwrap() error { return e.Err }

const retentionConfig = "retention.ms"

// KafkaTopics is the TopicManager of the real thing, built on kafka-go's Client.
//
// Every call gets a Transport of its own and closes it on return. kafka-go's Transport serves
// Metadata requests from a cache refreshed every few seconds; a fresh one sees topics as they
// are now (and no connections or discovery goroutines outlive the call, whatever the brokers
// did).
type KafkaTopics struct {
	// DialTimeout bounds connecting to a broker. Default 5s.
	DialTimeout time.Duration
}

var _ TopicManager = (*KafkaTopics)(nil)

func (k *KafkaTopics) client(kc KafkaCluster, topics []string) (*kafka.Client, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	dial := k.DialTimeout
	if dial == 0 {
		dial = 5 * time.Second
	}
	t := kc.Security.Transport("tcpgateway-operator", dial)
	t.MetadataTopics = topics // the cluster's other topics are none of our business
	t.Context = ctx
	return &kafka.Client{Addr: kafka.TCP(kc.Brokers...), Transport: t}, func() {
		cancel()
		t.CloseIdleConnections()
	}
}

// unreachable wraps a failed request: ErrKafkaUnreachable for errors.Is, and the cause for
// kafkasec.Reason.
func unreachable(err error) error { return fmt.Errorf("%w: %w", ErrKafkaUnreachable, err) }

// Ensure implements TopicManager.
//
// A new topic's replication factor is capped to the number of brokers in the cluster's
// metadata: Kafka refuses a topic with more replicas than brokers, and a one-broker
// development cluster should get working topics rather than an error.
// TopicResult.ReplicationCapped reports it.
func (k *KafkaTopics) Ensure(ctx context.Context, kc KafkaCluster, topics []TopicSpec) (TopicResult, error) {
	if len(kc.Brokers) == 0 {
		return TopicResult{}, fmt.Errorf("%w: no bootstrap servers", ErrKafkaUnreachable)
	}
	// A name twice (an invalid spec whose downlink and receipts topics coincide) is one
	// topic: create it once.
	seen := map[string]bool{}
	topics = slices.DeleteFunc(slices.Clone(topics), func(t TopicSpec) bool {
		dup := seen[t.Name]
		seen[t.Name] = true
		return dup
	})
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	existing, nBrokers, err := k.partitions(ctx, kc, names)
	if err != nil {
		return TopicResult{}, err
	}
	res := TopicResult{Brokers: nBrokers}

	var create []kafka.TopicConfig
	var grow []kafka.TopicPartitionsConfig
	var configure []TopicSpec
	for _, t := range topics {
		if t.ReplicationFactor > res.Brokers {
			res.ReplicationCapped = true
		}
		st := TopicState{Name: t.Name}
		have, ok := existing[t.Name]
		switch {
		case !ok:
			rf := t.ReplicationFactor
			if res.Brokers > 0 {
				rf = min(rf, res.Brokers)
			}
			tc := kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: rf}
			if t.Retention > 0 {
				tc.ConfigEntries = []kafka.ConfigEntry{{ConfigName: retentionConfig, ConfigValue: retentionMs(t.Retention)}}
			}
			create = append(create, tc)
			st.Partitions, st.Created = t.Partitions, true
		case have < t.Partitions:
			grow = append(grow, kafka.TopicPartitionsConfig{Name: t.Name, Count: int32(t.Partitions)})
			st.Partitions, st.GrownFrom = t.Partitions, have
			configure = append(configure, t)
		default:
			st.Partitions = have
			configure = append(configure, t)
		}
		res.Topics = append(res.Topics, st)
	}

	c, closeClient := k.client(kc, names)
	defer closeClient()
	if len(create) > 0 {
		resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: create})
		if err != nil {
			return res, unreachable(err)
		}
		for _, tc := range create {
			// Another writer may have created it since our metadata request; the next Ensure
			// then finds it and checks its partitions.
			if err := resp.Errors[tc.Topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
				return res, &TopicError{Topic: tc.Topic, Op: "create", Err: err}
			}
		}
	}
	if len(grow) > 0 {
		if err := k.grow(ctx, c, kc, grow); err != nil {
			return res, err
		}
	}
	if err := k.configureRetention(ctx, c, configure, &res); err != nil {
		return res, err
	}
	return res, nil
}

// partitions reads the partition counts of the existing topics among names, and the number of
// brokers, from a fresh metadata request.
func (k *KafkaTopics) partitions(ctx context.Context, kc KafkaCluster, names []string) (map[string]int, int, error) {
	c, closeClient := k.client(kc, names)
	defer closeClient()
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return nil, 0, unreachable(err)
	}
	existing := make(map[string]int, len(md.Topics))
	for _, t := range md.Topics {
		switch {
		case t.Error == nil:
			existing[t.Name] = len(t.Partitions)
		case errors.Is(t.Error, kafka.UnknownTopicOrPartition):
		default:
			return nil, 0, &TopicError{Topic: t.Name, Op: "describe", Err: t.Error}
		}
	}
	return existing, len(md.Brokers), nil
}

// grow adds partitions, then waits until the metadata shows them: Kafka answers
// CreatePartitions before the brokers' metadata has caught up, and a reconcile that read the
// old count right after would try to grow the topic again (and be refused).
func (k *KafkaTopics) grow(ctx context.Context, c *kafka.Client, kc KafkaCluster, grow []kafka.TopicPartitionsConfig) error {
	resp, err := c.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: grow})
	if err != nil {
		return unreachable(err)
	}
	names := make([]string, len(grow))
	for i, g := range grow {
		names[i] = g.Name
		if err := resp.Errors[g.Name]; err != nil {
			return &TopicError{Topic: g.Name, Op: "add partitions to", Err: err}
		}
	}
	// Nothing notifies us when the metadata is updated: poll it, bounded by ctx.
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		have, _, err := k.partitions(ctx, kc, names)
		if err != nil {
			return err
		}
		pending := ""
		for _, g := range grow {
			if have[g.Name] < int(g.Count) {
				pending = g.Name
			}
		}
		if pending == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return &TopicError{Topic: pending, Op: "add partitions to", Err: fmt.Errorf("metadata does not show the new partitions: %w", ctx.Err())}
		case <-time.After(delay):
		}
	}
}

// configureRetention sets retention.ms on existing topics whose value differs from the spec.
func (k *KafkaTopics) configureRetention(ctx context.Context, c *kafka.Client, topics []TopicSpec, res *TopicResult) error {
	var describe []kafka.DescribeConfigRequestResource
	want := map[string]string{}
	for _, t := range topics {
		if t.Retention > 0 {
			describe = append(describe, kafka.DescribeConfigRequestResource{
				ResourceType: kafka.ResourceTypeTopic, ResourceName: t.Name, ConfigNames: []string{retentionConfig},
			})
			want[t.Name] = retentionMs(t.Retention)
		}
	}
	if len(describe) == 0 {
		return nil
	}
	resp, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: describe})
	if err != nil {
		return unreachable(err)
	}
	var alter []kafka.IncrementalAlterConfigsRequestResource
	for _, r := range resp.Resources {
		if r.Error != nil {
			return &TopicError{Topic: r.ResourceName, Op: "describe", Err: r.Error}
		}
		current := ""
		for _, e := range r.ConfigEntries {
			if e.ConfigName == retentionConfig {
				current = e.ConfigValue
			}
		}
		if w, ok := want[r.ResourceName]; ok && current != w {
			alter = append(alter, kafka.IncrementalAlterConfigsRequestResource{
				ResourceType: kafka.ResourceTypeTopic,
				ResourceName: r.ResourceName,
				Configs:      []kafka.IncrementalAlterConfigsRequestConfig{{Name: retentionConfig, Value: w, ConfigOperation: kafka.ConfigOperationSet}},
			})
		}
	}
	if len(alter) == 0 {
		return nil
	}
	aresp, err := c.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: alter})
	if err != nil {
		return unreachable(err)
	}
	for _, r := range aresp.Resources {
		if r.Error != nil {
			return &TopicError{Topic: r.ResourceName, Op: "configure", Err: r.Error}
		}
	}
	for i := range res.Topics {
		if slices.ContainsFunc(alter, func(a kafka.IncrementalAlterConfigsRequestResource) bool {
			return a.ResourceName == res.Topics[i].Name
		}) {
			res.Topics[i].RetentionUpdated = true
		}
	}
	return nil
}

// Delete implements TopicManager.
func (k *KafkaTopics) Delete(ctx context.Context, kc KafkaCluster, topics []string) error {
	if len(kc.Brokers) == 0 {
		return fmt.Errorf("%w: no bootstrap servers", ErrKafkaUnreachable)
	}
	seen := map[string]bool{}
	topics = slices.DeleteFunc(slices.Clone(topics), func(t string) bool {
		dup := seen[t]
		seen[t] = true
		return dup
	})
	c, closeClient := k.client(kc, topics)
	defer closeClient()
	resp, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return unreachable(err)
	}
	for _, t := range topics {
		if err := resp.Errors[t]; err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
			return &TopicError{Topic: t, Op: "delete", Err: err}
		}
	}
	return nil
}

func retentionMs(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
