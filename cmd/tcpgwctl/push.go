package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/push"
)

// runPush publishes one downlink message, as a backend would with the push SDK.
func runPush(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka bootstrap servers, comma-separated")
	topic := fs.String("topic", "", "downlink topic (<namespace>.<name>.downlink)")
	receipts := fs.String("receipts", "", "receipts topic (needed with -ack or -reply)")
	user := fs.String("user", "", "target: every session of this user")
	sessionID := fs.String("session", "", "target: this session of -user (session ids are per user)")
	group := fs.String("group", "", "target: every session with this group tag")
	all := fs.Bool("all", false, "target: every session")
	ack := fs.Bool("ack", false, "wait for the app's ack")
	reply := fs.Bool("reply", false, "wait for the app's reply and print it")
	ttl := fs.Duration("ttl", 0, "expire the message after this long (0: never)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait")
	kafkaSec := addKafkaFlags(fs)
	_ = fs.Parse(args)

	var target push.Target
	targets := 0
	for _, t := range []struct {
		set bool
		t   push.Target
	}{{*user != "" && *sessionID == "", push.User(*user)}, {*sessionID != "", push.Session(*user, *sessionID)}, {*group != "", push.Group(*group)}, {*all, push.All()}} {
		if t.set {
			target, targets = t.t, targets+1
		}
	}
	if *topic == "" || targets != 1 || fs.NArg() != 1 {
		return errors.New("usage: tcpgwctl push -brokers B -topic T (-user U [-session S] | -group G | -all) [-ack | -reply -receipts T] " +
			"[-kafka-tls] [-kafka-ca F] [-kafka-cert F -kafka-key F] [-kafka-server-name N] [-sasl-username U [-sasl-mechanism M] [-sasl-password-file F]] PAYLOAD")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	opts := push.Options{Brokers: strings.Split(*brokers, ","), Topic: *topic, ClientID: "tcpgwctl"}
	if err := kafkaSec.apply(&opts, os.Getenv); err != nil {
		return err
	}
	if *ack || *reply {
		if *receipts == "" {
			return errors.New("-ack and -reply need -receipts")
		}
		opts.ReceiptsTopic = *receipts
	}
	p, err := push.New(ctx, opts)
	if err != nil {
		return withKafkaReason(err)
	}
	defer p.Close()
	msg := push.Message{Target: target, Payload: []byte(fs.Arg(0)), TTL: *ttl}
	switch {
	case *reply:
		out, err := p.Request(ctx, msg)
		if err != nil {
			return withKafkaReason(err)
		}
		fmt.Printf("reply: %s\n", out)
	case *ack:
		r, err := p.PushAndWaitAck(ctx, msg)
		if err != nil {
			return withKafkaReason(err)
		}
		fmt.Printf("acked %s by session %s (user %s) on %s\n", r.MessageId, r.SessionId, r.UserId, r.ServerId)
	default:
		id, err := p.Push(ctx, msg)
		if err != nil {
			return withKafkaReason(err)
		}
		fmt.Printf("pushed %s\n", id)
	}
	return nil
}
