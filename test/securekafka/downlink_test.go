package securekafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// TestDownlinkOverSASLSSL: a gateway process whose every Kafka client (downlink readers,
// receipt writer, expiry group) speaks SASL_SSL with SCRAM-SHA-512 delivers pushes the push
// SDK (SASL_SSL, SCRAM-SHA-256) and tcpgwctl (SASL_SSL, PLAIN) publish, and their waiting
// calls get the client's ack and reply, or EXPIRED from the expiry group, through the
// receipts topic.
func TestDownlinkOverSASLSSL(t *testing.T) {
	s := secureBroker(t)
	topic, receipts := s.CreateTopic(t, 3), s.CreateTopic(t, 3)
	side := kafkaSide{
		brokers: s.Bootstrap,
		tls:     &config.KafkaTLS{CAFile: s.CAFile},
		sasl:    &config.KafkaSASL{Mechanism: kafkasec.ScramSHA512, UsernameFile: s.UsernameFile, PasswordFile: s.PasswordFile},
	}
	g := startGateway(t, side, topic, receipts, true)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pushes := make(chan *client.Push, 16)
	c, err := client.Connect(ctx, client.Options{Addr: g.ClientAddr, Token: g.Token("alice"), OnPush: func(p *client.Push) { pushes <- p }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	go func() { // the app: acks what asks for an ack, answers "re: <payload>"
		for {
			select {
			case p := <-pushes:
				if p.AckRequired {
					_ = c.Ack(ctx, p)
				}
				if p.ReplyExpected {
					_ = c.Reply(ctx, p, append([]byte("re: "), p.Payload...))
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	o := publisherOptions(t, side, topic, receipts)
	o.SASL, err = kafkasec.Mechanism(kafkasec.ScramSHA256, s.Username, s.Password)
	if err != nil {
		t.Fatal(err)
	}
	p, err := push.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	r, err := p.PushAndWaitAck(ctx, push.Message{Target: push.User("alice"), Payload: []byte("hello"), TTL: time.Minute})
	if err != nil {
		t.Fatalf("PushAndWaitAck over SASL_SSL: %v", err)
	}
	if r.Kind != pb.Receipt_KIND_ACKED || r.UserId != "alice" || r.SessionId != c.SessionID() {
		t.Fatalf("receipt %v, want ACKED by alice's session %s", r, c.SessionID())
	}
	reply, err := p.Request(ctx, push.Message{Target: push.User("alice"), Payload: []byte("ping"), TTL: time.Minute})
	if err != nil || string(reply) != "re: ping" {
		t.Fatalf("Request over SASL_SSL = %q, %v; want \"re: ping\"", reply, err)
	}

	// The expiry group (a consumer group over the receipts topic, with its own connections)
	// works over SASL_SSL too: an unanswered push comes back EXPIRED.
	wait.For(t, 60*time.Second, "the expiry group to own the 3 receipts partitions over SASL_SSL", func() bool {
		return g.Metric("tcpgw_expiry_partitions_owned") == 3
	})
	bob, err := client.Connect(ctx, client.Options{Addr: g.ClientAddr, Token: g.Token("bob")}) // never answers
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bob.Close() })
	if r, err := p.PushAndWaitAck(ctx, push.Message{Target: push.User("bob"), Payload: []byte("unanswered"), TTL: 2 * time.Second}); !errors.Is(err, push.ErrExpired) {
		t.Fatalf("unanswered push over SASL_SSL: receipt %v, err %v; want push.ErrExpired", r, err)
	}

	// tcpgwctl, PLAIN, password from a file, then from the environment.
	plainSide := side
	plainSide.sasl = &config.KafkaSASL{Mechanism: kafkasec.Plain, UsernameFile: s.UsernameFile, PasswordFile: s.PasswordFile}
	args := append(tcpgwctlKafkaArgs(t, plainSide), "-topic", topic, "-receipts", receipts, "-user", "alice", "-ttl", "1m")
	if code, out := tcpgwctl(t, nil, append(args, "-ack", "from tcpgwctl")...); code != 0 || !strings.Contains(out, "acked ") || !strings.Contains(out, "(user alice)") {
		t.Fatalf("tcpgwctl push -ack over SASL_SSL: exit %d:\n%s", code, out)
	}
	envArgs := append(tcpgwctlKafkaArgs(t, kafkaSide{brokers: s.Bootstrap, tls: side.tls}), "-sasl-username", s.Username, "-sasl-mechanism", kafkasec.ScramSHA512,
		"-topic", topic, "-receipts", receipts, "-user", "alice", "-ttl", "1m", "-reply", "question")
	if code, out := tcpgwctl(t, []string{"TCPGW_KAFKA_PASSWORD=" + s.Password}, envArgs...); code != 0 || !strings.Contains(out, "reply: re: question") {
		t.Fatalf("tcpgwctl push -reply over SASL_SSL, password from $TCPGW_KAFKA_PASSWORD: exit %d:\n%s", code, out)
	}

	if strings.Contains(g.Log.String(), s.Password) {
		t.Error("the gateway logged the SASL password")
	}
}
