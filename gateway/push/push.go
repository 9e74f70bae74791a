// Package push is the Go SDK for backends that send messages to clients through the
// gateway's Kafka downlink topic: fire-and-forget pushes, pushes that wait for the app's ack,
// and requests that wait for the app's reply — the cluster-wide form of a per-server
// NotifyFuture. Waiting calls correlate by message id through the receipts topic.
package push

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Errors of waiting calls.
var (
	// ErrTimeout: no ack or reply arrived before the context's deadline. The message may still
	// be delivered later (until it expires).
	ErrTimeout = errors.New("push: no answer before the deadline")
	// ErrExpired: the message expired unanswered — before a gateway holding the target could
	// deliver it, or delivered but not acked or replied to by its expiry (the client never
	// came back, or never answered).
	ErrExpired = errors.New("push: the message expired unanswered")
)

// Target selects the sessions of a message.
type Target = *pb.Target

// User targets every session of a user; Session one session of a user (session ids are
// chosen per user); Group every session with the tag; All every session.
func User(id string) Target { return &pb.Target{Kind: &pb.Target_UserId{UserId: id}} }
func Session(userID, sessionID string) Target {
	return &pb.Target{Kind: &pb.Target_Session{Session: &pb.SessionTarget{UserId: userID, SessionId: sessionID}}}
}
func Group(name string) Target { return &pb.Target{Kind: &pb.Target_Group{Group: name}} }
func All() Target              { return &pb.Target{Kind: &pb.Target_All{All: true}} }

// FromTarget reports whether a receipt was written for a session the target selects, as far
// as the receipt shows: the user of a user target, the (user, session) of a session target.
// Receipts do not carry group tags, so for group and broadcast targets every receipt passes
// here; what holds for them is the gateways' check that a session answers only pushes it was
// sent (docs/downlink.md).
func FromTarget(t Target, r *pb.Receipt) bool {
	switch k := t.GetKind().(type) {
	case *pb.Target_UserId:
		return r.GetUserId() == k.UserId
	case *pb.Target_Session:
		return r.GetUserId() == k.Session.GetUserId() && r.GetSessionId() == k.Session.GetSessionId()
	}
	return true
}

// Message is one downlink message.
type Message struct {
	// ID identifies the message; empty gets a random one.
	ID            string
	Target        Target
	Payload       []byte
	CorrelationID string
	// TTL: not delivered after Now+TTL; 0 = never expires.
	TTL time.Duration
}

// Options configure a Publisher.
type Options struct {
	Brokers []string
	// Topic is the downlink topic; ReceiptsTopic the receipts topic (needed only for waiting
	// calls).
	Topic         string
	ReceiptsTopic string
	// TLS, when set, makes every connection to the brokers TLS; an empty ServerName means
	// the host of each address dialled. kafkasec.TLSConfig builds one from PEM bytes (CA
	// bundle, optional client certificate), TLS 1.2 or later. Nil: plaintext.
	TLS *tls.Config
	// SASL, when set, authenticates every connection to the brokers: kafka-go's
	// plain.Mechanism or scram.Mechanism, or kafkasec.Mechanism(name, user, password).
	// A mechanism that reads its credentials in Start gets them per new connection.
	SASL sasl.Mechanism
	// ClientID names the publisher's connections in the brokers' logs and quotas. Default
	// "tcpgateway-push".
	ClientID string
}

// DefaultClientID is Options.ClientID's default.
const DefaultClientID = "tcpgateway-push"

// dialTimeout bounds each connection to a broker: TCP, TLS handshake and SASL exchange.
const dialTimeout = 10 * time.Second

// Publisher publishes downlink records. It is safe for concurrent use.
type Publisher struct {
	w        *kafka.Writer
	tr       *kafka.Transport
	receipts *receiptWatcher // nil without ReceiptsTopic
}

// New makes a publisher. With a receipts topic it first positions its receipt readers at the
// end of every partition, so that no receipt of a later push can be missed; while the topic
// is too new for every partition to have a known leader, it retries until ctx ends. Without
// a receipts topic it connects at the first push.
//
// Errors that come from Kafka (here, or from Push and the waiting calls) can be classified
// with kafkasec.Reason: kafka_auth_failed (SASL credentials or ACLs refused),
// kafka_tls_failed (TLS handshake), topics_missing (Kafka does not know the topic) or
// kafka_unreachable.
func New(ctx context.Context, o Options) (*Publisher, error) {
	if len(o.Brokers) == 0 || o.Topic == "" {
		return nil, errors.New("push: Brokers and Topic are required")
	}
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	sec := kafkasec.Security{TLS: o.TLS, SASL: o.SASL}
	tr := sec.Transport(o.ClientID, dialTimeout)
	p := &Publisher{tr: tr, w: &kafka.Writer{
		Addr:      kafka.TCP(o.Brokers...),
		Transport: tr,
		Topic:     o.Topic,
		// murmur2 on the key, as the Java client does, so that our SDK and producers in other
		// languages put one user's records in the same partition (order per user).
		Balancer: &kafka.Murmur2Balancer{},
		// kafka-go's default BatchTimeout is 1 s: every lone push would wait a second for
		// company. 1 ms still batches bursts of concurrent pushes into one request.
		BatchTimeout: time.Millisecond,
		BatchSize:    1000,
		// All in-sync replicas: a push that returned is not lost by a broker failure.
		RequiredAcks: kafka.RequireAll,
		// Records must not be reordered by retries (at most one request in flight per
		// partition is kafka-go's behaviour); MaxAttempts bounds retries of transient errors.
		MaxAttempts:  5,
		WriteTimeout: 10 * time.Second,
	}}
	if o.ReceiptsTopic != "" {
		rw, err := watchReceipts(ctx, o.Brokers, sec, o.ClientID, o.ReceiptsTopic)
		if err != nil {
			tr.CloseIdleConnections()
			return nil, err
		}
		p.receipts = rw
	}
	return p, nil
}

// Record encodes a message as a downlink record, keyed as documented in downlink.proto.
// Exported for producers that batch themselves.
func Record(m Message, now time.Time) (kafka.Message, *pb.Downlink, error) {
	if m.Target == nil || m.Target.Kind == nil {
		return kafka.Message{}, nil, errors.New("push: message without target")
	}
	if m.ID == "" {
		m.ID = newID()
	}
	d := &pb.Downlink{
		MessageId:     m.ID,
		Target:        m.Target,
		Payload:       m.Payload,
		CreatedAtMs:   now.UnixMilli(),
		CorrelationId: m.CorrelationID,
	}
	if m.TTL > 0 {
		d.ExpiresAtMs = now.Add(m.TTL).UnixMilli()
	}
	return encode(d)
}

func encode(d *pb.Downlink) (kafka.Message, *pb.Downlink, error) {
	value, err := proto.Marshal(d)
	if err != nil {
		return kafka.Message{}, nil, err
	}
	return kafka.Message{Key: []byte(key(d.Target, d.MessageId)), Value: value}, d, nil
}

func key(t *pb.Target, messageID string) string {
	switch k := t.Kind.(type) {
	case *pb.Target_UserId:
		return k.UserId
	case *pb.Target_Session:
		return k.Session.GetUserId()
	case *pb.Target_Group:
		return k.Group
	}
	return messageID
}

// Push publishes a message and returns its id once Kafka has stored it.
func (p *Publisher) Push(ctx context.Context, m Message) (string, error) {
	msg, d, err := Record(m, time.Now())
	if err != nil {
		return "", err
	}
	if err := p.w.WriteMessages(ctx, msg); err != nil {
		return "", fmt.Errorf("push: while writing to Kafka: %w", err)
	}
	return d.MessageId, nil
}

// PushAsync publishes without waiting; done (optional) gets the outcome.
func (p *Publisher) PushAsync(m Message, done func(id string, err error)) {
	go func() {
		id, err := p.Push(context.Background(), m)
		if done != nil {
			done(id, err)
		}
	}()
}

// PushAndWaitAck publishes a message that the app must acknowledge and waits for the first
// ack from one of the target's sessions (receipts naming another user or session are
// ignored: FromTarget) until ctx is done.
func (p *Publisher) PushAndWaitAck(ctx context.Context, m Message) (*pb.Receipt, error) {
	return p.await(ctx, m, func(d *pb.Downlink) { d.AckRequired = true }, pb.Receipt_KIND_ACKED)
}

// Request publishes a message that expects the app's reply and returns the reply's payload.
func (p *Publisher) Request(ctx context.Context, m Message) ([]byte, error) {
	r, err := p.await(ctx, m, func(d *pb.Downlink) { d.ReplyExpected = true }, pb.Receipt_KIND_REPLIED)
	if err != nil {
		return nil, err
	}
	return r.Payload, nil
}

func (p *Publisher) await(ctx context.Context, m Message, flag func(*pb.Downlink), want pb.Receipt_Kind) (*pb.Receipt, error) {
	if p.receipts == nil {
		return nil, errors.New("push: waiting calls need Options.ReceiptsTopic")
	}
	_, d, err := Record(m, time.Now())
	if err != nil {
		return nil, err
	}
	flag(d)
	msg, _, err := encode(d)
	if err != nil {
		return nil, err
	}
	ch, cancel := p.receipts.wait(d.MessageId)
	defer cancel()
	if err := p.w.WriteMessages(ctx, msg); err != nil {
		return nil, fmt.Errorf("push: while writing to Kafka: %w", err)
	}
	for {
		select {
		case r := <-ch:
			if !FromTarget(d.Target, r) {
				continue
			}
			switch r.Kind {
			case want:
				return r, nil
			case pb.Receipt_KIND_EXPIRED:
				return r, ErrExpired
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (message %s): %v", ErrTimeout, d.MessageId, ctx.Err())
		}
	}
}

// Close flushes and stops the publisher.
func (p *Publisher) Close() error {
	if p.receipts != nil {
		p.receipts.close()
	}
	err := p.w.Close()
	p.tr.CloseIdleConnections()
	return err
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
