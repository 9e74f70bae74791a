package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// connFlags are the flags shared by the commands that open a session.
type connFlags struct {
	addr, token, tokenFile, session, device string
	tls                                     tlsFlags
}

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "127.0.0.1:7000", "gateway address (the load balancer's): host:port, or a ws:// or wss:// URL of its WebSocket listener")
	fs.StringVar(&f.token, "token", os.Getenv("TCPGW_TOKEN"), "auth token (default $TCPGW_TOKEN)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the token, re-read on every reconnect and refresh (replaces -token)")
	fs.StringVar(&f.session, "session", "", "session id to open or resume (default: assigned)")
	fs.StringVar(&f.device, "device", "tcpgwctl", "device id")
	f.tls.register(fs)
}

func (f *connFlags) connect(ctx context.Context, out io.Writer, reconnect bool) (*client.Client, error) {
	tlsConfig, err := f.tls.config()
	if err != nil {
		return nil, err
	}
	var c *client.Client
	var mu sync.Mutex
	opts := client.Options{
		TLS:  tlsConfig,
		Addr: f.addr, Token: f.token, SessionID: f.session, DeviceID: f.device,
		ClientVersion: "tcpgwctl", NoReconnect: !reconnect,
		OnPush: func(p *client.Push) {
			printPush(out, p.Push)
			mu.Lock()
			cl := c
			mu.Unlock()
			if cl != nil && p.AckRequired {
				_ = cl.Ack(ctx, p)
			}
		},
		OnConnect: func(ack *pb.HandshakeAck) {
			fmt.Fprintf(os.Stderr, "connected: session %s, user %s, gateway %s\n", ack.SessionId, ack.UserId, ack.ServerId)
		},
		OnDisconnect: func(err error) { fmt.Fprintf(os.Stderr, "disconnected: %v\n", err) },
	}
	if f.tokenFile != "" {
		path := f.tokenFile
		opts.TokenSource = func(context.Context) (string, error) {
			b, err := os.ReadFile(path)
			return strings.TrimSpace(string(b)), err
		}
	}
	cl, err := client.Connect(ctx, opts)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	c = cl
	mu.Unlock()
	return cl, nil
}

func printPush(w io.Writer, p *pb.Push) {
	line := map[string]any{
		"push": p.MessageId, "payload": string(p.Payload),
		"ackRequired": p.AckRequired, "replyExpected": p.ReplyExpected,
	}
	if p.Position != nil {
		line["partition"], line["offset"] = p.Position.Partition, p.Position.Offset
	}
	b, _ := json.Marshal(line)
	fmt.Fprintln(w, string(b))
}

func printResponse(w io.Writer, r *pb.Response) error {
	if r.Code != pb.ErrorCode_ERROR_CODE_OK {
		fmt.Fprintf(w, "error %s: %s\n", protocol.Reason(r.Code), r.Message)
		return fmt.Errorf("request failed: %s", protocol.Reason(r.Code))
	}
	fmt.Fprintf(w, "%d %s\n", r.Status, r.Payload)
	return nil
}

func runRequest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("request", flag.ExitOnError)
	var cf connFlags
	cf.register(fs)
	timeout := fs.Duration("timeout", 10*time.Second, "overall timeout")
	_ = fs.Parse(args)
	if fs.NArg() < 2 {
		return errors.New("usage: tcpgwctl request [flags] SERVICE METHOD [PAYLOAD]")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c, err := cf.connect(ctx, os.Stdout, false)
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.Request(ctx, fs.Arg(0), fs.Arg(1), []byte(fs.Arg(2)))
	if err != nil {
		return err
	}
	return printResponse(os.Stdout, resp)
}

func runWatch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("watch", flag.ExitOnError)
	var cf connFlags
	cf.register(fs)
	_ = fs.Parse(args)
	c, err := cf.connect(ctx, os.Stdout, true)
	if err != nil {
		return err
	}
	defer c.Close()
	select {
	case <-ctx.Done():
		return nil
	case <-c.Done():
		return c.Err()
	}
}

func runConnect(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("connect", flag.ExitOnError)
	var cf connFlags
	cf.register(fs)
	_ = fs.Parse(args)
	c, err := cf.connect(ctx, os.Stdout, true)
	if err != nil {
		return err
	}
	defer c.Close()

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	fmt.Fprintln(os.Stderr, `type "<service> <method> [payload]", "ping" or "quit"`)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.Done():
			return c.Err()
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if err := interact(ctx, c, strings.TrimSpace(line)); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}
	}
}

func interact(ctx context.Context, c *client.Client, line string) error {
	fields := strings.SplitN(line, " ", 3)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch {
	case line == "":
		return nil
	case line == "quit" || line == "exit":
		return io.EOF
	case line == "ping":
		rtt, err := c.Ping(ctx)
		if err == nil {
			fmt.Printf("pong in %s\n", rtt)
		}
		return err
	case len(fields) < 2:
		return errors.New(`want "<service> <method> [payload]"`)
	}
	payload := ""
	if len(fields) == 3 {
		payload = fields[2]
	}
	resp, err := c.Request(ctx, fields[0], fields[1], []byte(payload))
	if err != nil {
		return err
	}
	_ = printResponse(os.Stdout, resp)
	return nil
}
