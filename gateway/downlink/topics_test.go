package downlink

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestAbsentTopics(t *testing.T) {
	md := &kafka.MetadataResponse{Topics: []kafka.Topic{
		{Name: "down"},
		{Name: "rcpt", Error: kafka.UnknownTopicOrPartition},
	}}
	got, err := absentTopics(md, []string{"down", "rcpt", "other"})
	if err != nil || !slices.Equal(got, []string{"rcpt", "other"}) {
		t.Errorf("absentTopics = %v, %v; want [rcpt other]", got, err)
	}
	got, err = absentTopics(&kafka.MetadataResponse{Topics: []kafka.Topic{{Name: "down"}, {Name: "rcpt"}}}, []string{"down", "rcpt"})
	if err != nil || got != nil {
		t.Errorf("all present: %v, %v", got, err)
	}
	_, err = absentTopics(&kafka.MetadataResponse{Topics: []kafka.Topic{{Name: "down", Error: kafka.TopicAuthorizationFailed}}}, []string{"down"})
	if !errors.Is(err, kafka.TopicAuthorizationFailed) {
		t.Errorf("authorization error: %v", err)
	}
}

func TestNextBackoff(t *testing.T) {
	lo, hi := time.Second, 15*time.Second
	var got []time.Duration
	d := time.Duration(0)
	for range 6 {
		d = nextBackoff(d, lo, hi)
		got = append(got, d)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("backoff %v, want %v", got, want)
	}
}
