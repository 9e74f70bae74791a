package push_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

// Consume folds what a real broker returns: well-formed events become presence, garbage and
// malformed events are counted and skipped without stopping it, and it returns when its
// context ends or its reader is closed.
func TestPresenceConsume(t *testing.T) {
	brokers := kafkatest.Bootstrap(t)
	topic := kafkatest.CreateTopic(t, brokers, 1)
	event := func(ev *pb.SessionEvent) kafka.Message {
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return kafka.Message{Key: []byte(ev.UserId), Value: b}
	}
	connected := func(user, session, conn string, seq uint64) *pb.SessionEvent {
		return &pb.SessionEvent{Kind: pb.SessionEvent_KIND_CONNECTED, UserId: user, SessionId: session,
			ServerId: "gw-0", ConnectionId: conn, Epoch: 1, Seq: seq, AtMs: 1000}
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx,
		event(connected("alice", "s1", "c1", 1)),
		kafka.Message{Key: []byte("mallory"), Value: []byte("\xff\xfenot a protobuf")},
		event(&pb.SessionEvent{Kind: pb.SessionEvent_KIND_CONNECTED, SessionId: "s9", ServerId: "gw-0", ConnectionId: "c9"}), // no user
		event(connected("bob", "s2", "c2", 2)),
	); err != nil {
		t.Fatal(err)
	}

	p := push.NewPresence()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, Topic: topic, Partition: 0,
		MaxWait: 100 * time.Millisecond, StartOffset: kafka.FirstOffset})
	consumeCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Consume(consumeCtx, r) }()
	wait.For(t, 20*time.Second, "two users online", func() bool { return p.Users() == 2 })
	if got := p.User("alice"); len(got) != 1 || got[0].SessionID != "s1" || got[0].ServerID != "gw-0" || got[0].ConnectionID != "c1" {
		t.Errorf("alice: %+v", got)
	}
	st := p.Stats()
	if st.Applied != 2 || st.Skipped[push.SkipUndecodable] != 1 || st.Skipped[push.SkipInvalid] != 1 {
		t.Errorf("stats %+v, want 2 applied, 1 undecodable, 1 invalid", st)
	}

	stop()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Consume returned %v after its context ended, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Consume did not return after its context ended")
	}

	go func() { done <- p.Consume(ctx, r) }()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Errorf("Consume returned %v after its reader closed, want io.EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Consume did not return after its reader closed")
	}
}
