// Command godriver is the conformance driver of the Go SDK (sdk/go/client): it reads one JSON
// command per line on stdin and writes one JSON event per line on stdout, as
// test/conformance/DRIVER.md specifies, so the conformance harness drives the Go SDK exactly as
// it drives the Java and TypeScript ones. It adds no behaviour of its own: every state change,
// push and error it reports comes from the SDK's callbacks and return values.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
)

// maxLine bounds one command line (a request payload of 1 MiB in base64 fits).
const maxLine = 4 << 20

// defaultDeadline bounds a command's wait when it names none.
const defaultDeadline = 30 * time.Second

func main() {
	d := &driver{out: json.NewEncoder(os.Stdout), clients: map[string]*sdkClient{}}
	d.emit(wire.Event{Event: "ready", Driver: "go", Capabilities: []string{wire.CapPositions, wire.CapWebSocket}})
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), maxLine)
	var running sync.WaitGroup
	for in.Scan() {
		var cmd wire.Command
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			d.emit(wire.Event{Event: "result", Error: &wire.Failure{Kind: wire.KindBadCommand, Message: err.Error()}})
			continue
		}
		if cmd.Client == "" {
			cmd.Client = "c"
		}
		// Commands run concurrently: a request waiting for its response must not hold up the
		// next command (the harness checks that responses can come back out of order).
		running.Add(1)
		go func() {
			defer running.Done()
			d.run(cmd)
		}()
	}
	if err := in.Err(); err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, "godriver: reading commands:", err)
	}
	running.Wait()
	d.closeAll()
}

type driver struct {
	outMu sync.Mutex
	out   *json.Encoder

	mu      sync.Mutex // guards clients
	clients map[string]*sdkClient
}

// sdkClient is one SDK client and what the driver keeps for it.
type sdkClient struct {
	c *client.Client

	mu      sync.Mutex
	token   string                  // what the token source returns (connect, set_token)
	fetches int                     // token source calls
	pushes  map[string]*client.Push // delivered pushes by message id, for ack and reply
	closing bool                    // the app closed it: its stop is not the SDK's decision
}

func (d *driver) emit(e wire.Event) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	if err := d.out.Encode(e); err != nil {
		fmt.Fprintln(os.Stderr, "godriver: writing an event:", err)
		os.Exit(1)
	}
}

func (d *driver) client(name string) *sdkClient {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.clients[name]
}

func (d *driver) run(cmd wire.Command) {
	res := wire.Event{Event: "result", ID: cmd.ID, Client: cmd.Client}
	deadline := defaultDeadline
	if cmd.DeadlineMs > 0 {
		deadline = time.Duration(cmd.DeadlineMs) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if cmd.Op == "connect" {
		res.SessionID, res.Error = d.connect(ctx, cmd)
		res.OK = res.Error == nil
		d.emit(res)
		return
	}
	sc := d.client(cmd.Client)
	if sc == nil {
		res.Error = &wire.Failure{Kind: wire.KindBadCommand, Message: "no client " + cmd.Client}
		d.emit(res)
		return
	}
	var err error
	switch cmd.Op {
	case "request":
		var opts []client.RequestOption
		if len(cmd.Headers) > 0 {
			opts = append(opts, client.WithHeaders(cmd.Headers))
		}
		if cmd.TimeoutMs > 0 {
			opts = append(opts, client.WithTimeout(time.Duration(cmd.TimeoutMs)*time.Millisecond))
		}
		var r *pb.Response
		if r, err = sc.c.Request(ctx, cmd.Service, cmd.Method, cmd.Payload, opts...); err == nil {
			res.Response = &wire.Response{Code: codeName(r.Code), Status: r.Status, Payload: r.Payload, Headers: r.Headers, Message: r.Message}
		}
	case "ping":
		var rtt time.Duration
		if rtt, err = sc.c.Ping(ctx); err == nil {
			res.RTTMs = float64(rtt.Microseconds()) / 1000
		}
	case "ack", "reply":
		p := sc.push(cmd.MessageID)
		switch {
		case p == nil:
			res.Error = &wire.Failure{Kind: wire.KindBadCommand, Message: "no push delivered with message id " + cmd.MessageID}
		case cmd.Op == "ack":
			err = sc.c.Ack(ctx, p)
		default:
			err = sc.c.Reply(ctx, p, cmd.Payload)
		}
	case "set_token":
		sc.mu.Lock()
		sc.token = cmd.Token
		sc.mu.Unlock()
	case "session_id":
		res.SessionID = sc.c.SessionID()
	case "close":
		sc.mu.Lock()
		sc.closing = true
		sc.mu.Unlock()
		err = sc.c.Close()
	case "export_positions":
		st := sc.c.ResumeState()
		exp := &wire.Exported{SessionID: st.SessionID, ResumeToken: st.ResumeToken, Positions: []wire.Position{}}
		for _, p := range slices.Sorted(maps.Keys(st.Positions)) {
			exp.Positions = append(exp.Positions, wire.Position{Partition: p, Offset: st.Positions[p]})
		}
		res.Positions = exp
	default:
		res.Error = &wire.Failure{Kind: wire.KindUnsupported, Message: "unknown op " + cmd.Op}
	}
	if err != nil {
		res.Error = failure(err)
	}
	res.OK = res.Error == nil
	d.emit(res)
}

func (sc *sdkClient) push(id string) *client.Push {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.pushes[id]
}

// connect maps the command onto client.Options and runs client.Connect.
func (d *driver) connect(ctx context.Context, cmd wire.Command) (string, *wire.Failure) {
	if d.client(cmd.Client) != nil {
		return "", &wire.Failure{Kind: wire.KindBadCommand, Message: "client " + cmd.Client + " exists"}
	}
	name := cmd.Client
	sc := &sdkClient{token: cmd.Token, pushes: map[string]*client.Push{}}
	o := client.Options{
		Addr:          cmd.Address,
		SessionID:     cmd.SessionID,
		DeviceID:      cmd.DeviceID,
		ClientVersion: cmd.ClientVersion,
		NoReconnect:   cmd.NoReconnect,
		DedupWindow:   cmd.DedupWindow,
		MaxFrameBytes: cmd.MaxFrameBytes,
		OnPush: func(p *client.Push) {
			sc.mu.Lock()
			sc.pushes[p.MessageId] = p
			sc.mu.Unlock()
			d.emit(wire.Event{Event: "push", Client: name, Push: pushOf(p.Push)})
		},
		OnConnect: func(a *pb.HandshakeAck) {
			d.emit(wire.Event{Event: "state", Client: name, State: "connected", Ack: ackOf(a)})
		},
		OnDisconnect: func(err error) {
			cause := failure(err)
			if cause.Kind == wire.KindTimeout {
				cause.Kind = wire.KindTransport // a PONG that did not come: no command's deadline
			}
			d.emit(wire.Event{Event: "state", Client: name, State: "disconnected", Cause: cause})
		},
		OnRefused: func(e *pb.Error) {
			d.emit(wire.Event{Event: "error", Client: name, Code: codeName(e.Code), Message: e.Message})
		},
	}
	if r := cmd.Resume; r != nil {
		o.Resume = &client.ResumeState{SessionID: r.SessionID, ResumeToken: r.ResumeToken, Positions: map[int32]int64{}}
		for _, p := range r.Positions {
			o.Resume.Positions[p.Partition] = p.Offset
		}
	}
	if cmd.Refreshable {
		o.TokenSource = func(context.Context) (string, error) {
			sc.mu.Lock()
			sc.fetches++
			tok, n := sc.token, sc.fetches
			sc.mu.Unlock()
			d.emit(wire.Event{Event: "token_fetched", Client: name, N: n})
			return tok, nil
		}
	} else {
		o.Token = cmd.Token
	}
	if r := cmd.Reconnect; r != nil {
		o.Reconnect = client.Backoff{Initial: ms(r.InitialMs), Max: ms(r.MaxMs), LostSpread: ms(r.LostSpreadMs)}
	}
	if cmd.TLS != nil {
		cfg := &tls.Config{ServerName: cmd.TLS.ServerName, MinVersion: tls.VersionTLS12}
		if cmd.TLS.CAPEM != "" {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM([]byte(cmd.TLS.CAPEM)) {
				return "", &wire.Failure{Kind: wire.KindBadCommand, Message: "tls.ca_pem holds no certificate"}
			}
			cfg.RootCAs = pool
		}
		o.TLS = cfg
	}
	c, err := client.Connect(ctx, o)
	if err != nil {
		return "", failure(err)
	}
	sc.c = c
	d.mu.Lock()
	d.clients[name] = sc
	d.mu.Unlock()
	go func() {
		<-c.Done()
		sc.mu.Lock()
		closing := sc.closing
		sc.mu.Unlock()
		cause := failure(c.Err())
		if closing {
			cause = &wire.Failure{Kind: wire.KindClosed, Message: "closed by the app"}
		}
		d.emit(wire.Event{Event: "state", Client: name, State: "stopped", Cause: cause})
	}()
	return c.SessionID(), nil
}

func (d *driver) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sc := range d.clients {
		_ = sc.c.Close()
	}
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

// codeName is an ErrorCode's name without its prefix: "UNKNOWN_PUSH".
func codeName(c pb.ErrorCode) string { return strings.TrimPrefix(c.String(), "ERROR_CODE_") }

// failure classifies an SDK error into the protocol's kinds.
func failure(err error) *wire.Failure {
	if err == nil {
		return nil
	}
	var se *client.ServerError
	var ga *client.GoAwayError
	var ts *client.TokenSourceError
	f := &wire.Failure{Message: err.Error()}
	switch fe, isFrame := protocol.IsFrameError(err); {
	case errors.As(err, &se):
		f.Kind, f.Code, f.Message = wire.KindServerError, codeName(se.Code), se.Message
	case errors.As(err, &ga):
		f.Kind = wire.KindGoAway
		f.Reason = strings.TrimPrefix(ga.GoAway.Reason.String(), "REASON_")
		f.ReconnectDelayMs = ga.GoAway.ReconnectDelayMs
	case isFrame && fe.Code == pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE:
		f.Kind = wire.KindFrameTooLarge
	case errors.Is(err, client.ErrNotRequested):
		f.Kind = wire.KindNotRequested
	case errors.Is(err, client.ErrAlreadyAnswered):
		f.Kind = wire.KindAlreadyAnswered
	case errors.Is(err, client.ErrConnectionLost):
		f.Kind = wire.KindConnLost
	case errors.Is(err, client.ErrClosed):
		f.Kind = wire.KindClosed
	case errors.Is(err, context.DeadlineExceeded):
		f.Kind = wire.KindTimeout
	case errors.As(err, &ts):
		f.Kind = wire.KindTokenSource
	default:
		f.Kind = wire.KindTransport
	}
	return f
}

func ackOf(a *pb.HandshakeAck) *wire.Ack {
	out := &wire.Ack{
		ProtocolVersion: a.ProtocolVersion, SessionID: a.SessionId, UserID: a.UserId, ServerID: a.ServerId,
		HeartbeatIntervalMs: a.HeartbeatIntervalMs, IdleTimeoutMs: a.IdleTimeoutMs, MaxFrameBytes: a.MaxFrameBytes,
		TokenExpiresAtMs: a.TokenExpiresAtMs, Positions: positions(a.Positions),
	}
	if r := a.Resume; r != nil {
		out.Resume = &wire.Resume{Status: strings.TrimPrefix(r.Status.String(), "STATUS_"),
			NotRecovered: positions(r.NotRecovered), Rejected: positions(r.Rejected)}
	}
	return out
}

func positions(ps []*pb.Position) []wire.Position {
	var out []wire.Position
	for _, p := range ps {
		out = append(out, wire.Position{Partition: p.Partition, Offset: p.Offset})
	}
	return out
}

func pushOf(p *pb.Push) *wire.Push {
	out := &wire.Push{MessageID: p.MessageId, Payload: p.Payload, AckRequired: p.AckRequired, ReplyExpected: p.ReplyExpected,
		ExpiresAtMs: p.ExpiresAtMs, CreatedAtMs: p.CreatedAtMs, CorrelationID: p.CorrelationId}
	if p.Position != nil {
		out.Position = &wire.Position{Partition: p.Position.Partition, Offset: p.Position.Offset}
	}
	return out
}
