// Package client is the Go SDK for apps and tools speaking to a tcpgateway: it dials, runs the
// handshake, keeps the session alive with heartbeats, correlates requests with responses,
// delivers pushes in order without duplicates (by position and by message id), and reconnects
// with exponential backoff and jitter, honouring the gateway's GOAWAY delay and resuming the
// session where it stopped. Its token comes from a TokenSource, asked on every (re)connect and
// whenever the gateway asks for a refresh, so sessions outlive their tokens and key rotations.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"maps"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Backoff shapes reconnect delays: the n-th consecutive failure waits a random duration in
// [d/2, d] with d = min(Max, Initial·2ⁿ), so a fleet that lost one pod does not come back in
// lockstep.
type Backoff struct {
	Initial time.Duration // default 250ms
	Max     time.Duration // default 30s
	// LostSpread: the first reconnect after a connection is lost without a GOAWAY (its pod
	// crashed, the network dropped) waits a uniform random duration in [0, LostSpread], so
	// the clients of a crashed pod reach the survivors spread over that window instead of
	// within Initial. Default 3s; negative: no spread (the first retry waits as after a
	// failure). A GOAWAY carries its own delay, spread by the gateway.
	LostSpread time.Duration
}

// DefaultLostSpread is Backoff.LostSpread's default.
const DefaultLostSpread = 3 * time.Second

// afterLoss is the wait before the first reconnect after an unexpected loss.
func (b Backoff) afterLoss() time.Duration {
	if b.LostSpread <= 0 {
		return b.delay(0)
	}
	return rand.N(b.LostSpread + 1)
}

func (b Backoff) delay(attempt int) time.Duration {
	d := b.Initial
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + rand.N(d/2+1)
}

// TokenSource returns a token for the next handshake or REFRESH. It is called on every
// (re)connect and whenever the gateway asks for a refresh; it should return a token that is
// valid now (fetch a new one when the cached one is near its expiry). Errors are retried with
// backoff.
type TokenSource func(ctx context.Context) (string, error)

// DefaultAuthAttempts is Options.AuthAttempts' default.
const DefaultAuthAttempts = 10

// DefaultDedupWindow is Options.DedupWindow's default.
const DefaultDedupWindow = 1024

// Options configure a Client. Addr and one of Token or TokenSource are required.
type Options struct {
	// Addr is the gateway's address: host:port for TCP (and TLS), or the URL of its WebSocket
	// listener, path included: ws://host:port/tcpgw, or wss://… for WebSocket over TLS
	// (docs/client-behaviour.md, "WebSocket transport"). Every reconnect dials the same.
	Addr string
	// Token is a fixed token, for tools and tests: it cannot be refreshed, so the client stops
	// once the gateway refuses it (expired, key rotated out).
	Token string
	// TokenSource, when set, replaces Token: it is asked for a token before every handshake
	// and on every REFRESH_REQUEST. With a TokenSource, a handshake refused as
	// UNAUTHENTICATED (or a session closed with TOKEN_EXPIRED) makes the client ask it again
	// and reconnect with backoff instead of stopping; see AuthAttempts.
	TokenSource TokenSource
	// AuthAttempts bounds consecutive reconnects refused as UNAUTHENTICATED or TOKEN_EXPIRED
	// with a TokenSource: after that many the client stops (Err is the last refusal). With
	// the default backoff, 10 attempts span about two minutes. Negative: never stop. Without
	// a TokenSource the first refusal stops the client (the same token would be refused
	// again), except webhook_unavailable, which is the gateway's problem and retried.
	// Default 10.
	AuthAttempts int
	// DedupWindow is how many recent message ids the client remembers to drop duplicate
	// pushes that arrive at different positions (a publisher's retry writes a second record).
	// Memory: about 100 bytes per id. Negative disables dedup by id; duplicates by position
	// are always dropped. Default 1024.
	DedupWindow int

	SessionID     string // empty: the gateway assigns one, kept across reconnects
	DeviceID      string
	ClientVersion string
	// Resume, when set, is a ResumeState an earlier run exported (R36): the first connect
	// resumes that session from its positions, so the gateway replays what was published
	// while the app was not running (or answers NOT_RECOVERED). It replaces SessionID, which
	// must then be empty or the same. A state without positions or resume token resumes
	// nothing: the first connect opens the session as new.
	Resume *ResumeState
	// Dialer dials the gateway (for a WebSocket URL, its host and port: 80 or 443 when the
	// URL names none); set LocalAddr to pick the source address. Default: 5s timeout.
	Dialer *net.Dialer
	// DialContext, when set, replaces Dialer (custom transports, tests that move clients, a
	// tunnel through a proxy): TLS and the WebSocket upgrade run on the connection it returns.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS, when set, makes every connection TLS, for a gateway with listen.tls or behind a
	// load balancer that terminates TLS. RootCAs nil trusts the system roots; ServerName
	// empty is Addr's host. A wss:// Addr is TLS whatever TLS says (nil: the system roots)
	// and a ws:// one is plaintext (TLS set: Connect fails). The TLS handshake counts against HandshakeTimeout. A certificate
	// the client does not trust fails Connect, and later reconnects are retried with backoff
	// like any transport error (the server's certificate may be mid-rotation). Nil: plaintext.
	TLS *tls.Config
	// MaxFrameBytes is the client's frame limit: the largest frame body it accepts from the
	// gateway and sends to it; sends are also capped by the connection's
	// HandshakeAck.MaxFrameBytes when that is smaller (R4). A call whose frame is above the
	// limit fails with a *protocol.FrameError (errors.Is protocol.ErrFrameTooLarge), nothing is
	// written and the connection stays. Default 65536.
	MaxFrameBytes int
	// HandshakeTimeout bounds dial + handshake. Default 10s.
	HandshakeTimeout time.Duration
	// OnPush receives pushes in order, each once; it runs on the reader goroutine, so it must
	// not block for long. Answer with Client.Ack / Client.Reply, passing the *Push received.
	OnPush func(*Push)
	// OnConnect is called after every successful handshake (first and reconnects).
	OnConnect func(*pb.HandshakeAck)
	// OnDisconnect is called when a connection ends, with the reason.
	OnDisconnect func(error)
	// OnRefused receives the gateway's non-fatal ERRORs: a frame of this client was refused
	// (e.g. UNKNOWN_PUSH for an answer to a push this session was not sent) and the session
	// goes on. It runs on the reader goroutine.
	OnRefused func(*pb.Error)
	// Reconnect delays; NoReconnect disables reconnecting.
	Reconnect   Backoff
	NoReconnect bool
}

func (o *Options) defaults() {
	if o.TLS == nil && strings.HasPrefix(strings.ToLower(o.Addr), "wss://") {
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12} // the system roots
	}
	if o.TLS != nil && o.TLS.ServerName == "" {
		o.TLS = o.TLS.Clone() // the caller's stays as it was
		o.TLS.ServerName = serverName(o.Addr)
	}
	if o.Dialer == nil {
		o.Dialer = &net.Dialer{Timeout: 5 * time.Second}
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = 65536
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.Reconnect.Initial == 0 {
		o.Reconnect.Initial = 250 * time.Millisecond
	}
	if o.Reconnect.Max == 0 {
		o.Reconnect.Max = 30 * time.Second
	}
	if o.Reconnect.LostSpread == 0 {
		o.Reconnect.LostSpread = DefaultLostSpread
	}
	if o.AuthAttempts == 0 {
		o.AuthAttempts = DefaultAuthAttempts
	}
	if o.DedupWindow == 0 {
		o.DedupWindow = DefaultDedupWindow
	}
}

// token asks the token source, or returns the fixed token.
func (o *Options) token(ctx context.Context) (string, error) {
	if o.TokenSource != nil {
		return o.TokenSource(ctx)
	}
	return o.Token, nil
}

// ErrClosed is returned after Close or once the client stopped for good (see Err).
var ErrClosed = errors.New("client: closed")

// Client keeps one session with a gateway alive across connections.
type Client struct {
	opts Options

	mu          sync.Mutex // guards everything below
	cur         *conn
	up          chan struct{} // closed when cur is set; replaced when cur goes
	sessionID   string
	resumeToken string
	positions   map[int32]int64 // last delivered offset per partition: drops duplicates
	seen        *idWindow       // recent message ids: drops a publisher's duplicate records
	floor       map[int32]int64 // watermarks confirmed complete: where resumes may start at the latest
	err         error           // why the client stopped for good

	stop chan struct{}
	done chan struct{}
}

// Connect opens the first connection (so a bad address or token fails here) and then keeps
// the session connected until Close.
func Connect(ctx context.Context, opts Options) (*Client, error) {
	if err := opts.checkTransport(); err != nil {
		return nil, err
	}
	opts.defaults()
	c := &Client{opts: opts, sessionID: opts.SessionID, positions: map[int32]int64{}, floor: map[int32]int64{},
		seen: newIDWindow(opts.DedupWindow),
		up:   make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	if r := opts.Resume; r != nil {
		if err := r.check(); err != nil {
			return nil, err
		}
		if opts.SessionID != "" && opts.SessionID != r.SessionID {
			return nil, errors.New("client: Options.SessionID and Options.Resume name different sessions")
		}
		// Imported offsets count as delivered: a replay of one is dropped like any duplicate.
		c.sessionID, c.resumeToken, c.positions = r.SessionID, r.ResumeToken, maps.Clone(r.Positions)
		if c.positions == nil {
			c.positions = map[int32]int64{}
		}
	}
	first, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	go c.supervise(first)
	return c, nil
}

func (c *Client) connect(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.HandshakeTimeout)
	defer cancel()
	token, err := c.opts.token(ctx)
	if err != nil {
		return nil, &TokenSourceError{Err: err}
	}
	c.mu.Lock()
	hs := &pb.Handshake{
		ProtocolVersion: protocol.Version,
		Token:           token,
		SessionId:       c.sessionID,
		DeviceId:        c.opts.DeviceID,
		ClientVersion:   c.opts.ClientVersion,
	}
	if c.resumeToken != "" || len(c.positions) > 0 || len(c.floor) > 0 {
		hs.Resume = &pb.Resume{ResumeToken: c.resumeToken}
		for p, o := range c.resumePositionsLocked() {
			hs.Resume.Positions = append(hs.Resume.Positions, &pb.Position{Partition: p, Offset: o})
		}
	}
	c.mu.Unlock()

	cn, err := dial(ctx, &c.opts, hs, c.deliver, c.detach, c.refresh)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.sessionID = cn.ack.SessionId
	// The resume token belongs to the move a GOAWAY DRAINING or REBALANCE asked for: this
	// handshake was acknowledged, so the move is over, whatever its result (R26).
	c.resumeToken = ""
	c.cur = cn
	close(c.up)
	if hs.Resume == nil {
		// A new session is owed nothing from before its watermarks: they are its floor at
		// once. Waiting for a PONG as after a resume would leave a session cut in between
		// with no position, and its next handshake would not resume at all.
		c.raiseFloorLocked(cn.ack.Positions)
	}
	c.mu.Unlock()
	if c.opts.OnConnect != nil {
		c.opts.OnConnect(cn.ack)
	}
	if hs.Resume != nil {
		go c.confirmWatermarks(cn)
	}
	return cn, nil
}

// confirmWatermarks raises the resume floor to the gateway's watermarks once a PONG proves
// that everything the gateway queued before it (the resume replay) has arrived: records up
// to the watermarks that targeted this session were delivered, so a later resume need not
// ask for them, whichever partition they were in.
func (c *Client) confirmWatermarks(cn *conn) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.HandshakeTimeout)
	defer cancel()
	if _, err := cn.call(ctx, &pb.Frame{Body: &pb.Frame_Ping{Ping: &pb.Ping{ClientTimeMs: time.Now().UnixMilli()}}}); err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.raiseFloorLocked(cn.ack.Positions)
}

// raiseFloorLocked raises the resume floor to watermarks.
func (c *Client) raiseFloorLocked(watermarks []*pb.Position) {
	for _, w := range watermarks {
		// An empty partition's watermark is -1: the floor must keep it, or a record later
		// written at offset 0 would count as delivered and never be replayed.
		if cur, ok := c.floor[w.Partition]; !ok || w.Offset > cur {
			c.floor[w.Partition] = w.Offset
		}
	}
}

// detach makes cn no longer the current connection (it was told to go away or ended).
func (c *Client) detach(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == cn {
		c.cur = nil
		c.up = make(chan struct{})
	}
}

// deliver passes a push to the app unless it is a replay of one already delivered (same
// position) or a duplicate record of one (same message id at another position: the publisher
// retried). A duplicate still advances the position, so no resume asks for it again.
func (c *Client) deliver(p *pb.Push) {
	c.mu.Lock()
	if pos := p.GetPosition(); pos != nil {
		last, seen := c.positions[pos.Partition]
		if seen && pos.Offset <= last {
			c.mu.Unlock()
			return
		}
		c.positions[pos.Partition] = pos.Offset
	}
	dup := !c.seen.add(p.MessageId)
	c.mu.Unlock()
	if !dup && c.opts.OnPush != nil {
		c.opts.OnPush(&Push{Push: p})
	}
}

// refresh answers the gateway's REFRESH_REQUEST on cn with a token from the TokenSource,
// retrying with backoff until the request's deadline (at least HandshakeTimeout from now, as
// the gateway's clock may run ahead of ours). A client with a fixed token has nothing new to
// send: its session closes with TOKEN_EXPIRED at the deadline and the client stops.
func (c *Client) refresh(cn *conn, req *pb.RefreshRequest) {
	if c.opts.TokenSource == nil {
		return
	}
	deadline := time.UnixMilli(req.DeadlineMs)
	if floor := time.Now().Add(c.opts.HandshakeTimeout); deadline.Before(floor) {
		deadline = floor
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for attempt := 0; ; attempt++ {
		if token, err := c.opts.TokenSource(ctx); err == nil {
			f, err := cn.call(ctx, &pb.Frame{Body: &pb.Frame_Refresh{Refresh: &pb.Refresh{Token: token}}})
			if err == nil && f.GetRefreshAck().GetCode() == pb.ErrorCode_ERROR_CODE_OK {
				return
			}
			if err != nil && cn.Err() != nil || errors.Is(err, errLeaving) {
				return // the connection ended; the next one authenticates with a new token
			}
		}
		select {
		case <-time.After(c.opts.Reconnect.delay(attempt)):
		case <-ctx.Done():
			return
		case <-cn.done:
			return
		}
	}
}

// supervise waits for the current connection to end and reconnects until Close or a reason
// that reconnecting cannot fix.
func (c *Client) supervise(cn *conn) {
	defer close(c.done)
	attempt := 0
	for {
		var cause error
		select {
		case <-cn.done:
			cause = cn.Err()
		case <-cn.leaving:
			// The old connection finishes its calls on its own; the next one opens now.
			cause = cn.leavingCause()
		case <-c.stop:
			cn.close(ErrClosed)
			c.finish(ErrClosed)
			return
		}
		c.keepResumeToken(cause)
		if c.opts.OnDisconnect != nil {
			c.opts.OnDisconnect(cause)
		}
		c.detach(cn)

		wait, fatal := c.afterDisconnect(cause)
		refusals := 0
		if isAuthRefusal(cause) {
			refusals = 1 // the session ended because of its token
			wait = c.opts.Reconnect.delay(0)
		}
		if fatal || c.opts.NoReconnect {
			c.finish(cause)
			return
		}
		for {
			select {
			case <-time.After(wait):
			case <-c.stop:
				c.finish(ErrClosed)
				return
			}
			next, err := c.connect(context.Background())
			if err == nil {
				cn, attempt = next, 0
				break
			}
			if isAuthRefusal(err) {
				refusals++
			}
			if c.stopAfter(err, refusals) {
				c.finish(err)
				return
			}
			wait = c.opts.Reconnect.delay(attempt)
			attempt++
		}
	}
}

// keepResumeToken keeps the resume token of a GOAWAY DRAINING or REBALANCE for the reconnect
// it asks for (R26, R42): every handshake until one is acknowledged carries it, and so does an
// export meanwhile. It is set before the app hears of the disconnect, so an export from
// OnDisconnect has it. The token of a reason this client does not know is not kept: what
// such a GOAWAY asks of it is unknown beyond reconnecting (R43).
func (c *Client) keepResumeToken(cause error) {
	var ga *GoAwayError
	if errors.As(cause, &ga) && movesSession(ga.GoAway.Reason) {
		c.mu.Lock()
		c.resumeToken = ga.GoAway.ResumeToken
		c.mu.Unlock()
	}
}

// movesSession: the GOAWAY asks the client to resume its session elsewhere with its token:
// the pod drains (R26) or rebalances (R42).
func movesSession(r pb.GoAway_Reason) bool {
	return r == pb.GoAway_REASON_DRAINING || r == pb.GoAway_REASON_REBALANCE
}

// afterDisconnect decides how long to wait before reconnecting, and whether to stop.
func (c *Client) afterDisconnect(cause error) (time.Duration, bool) {
	var ga *GoAwayError
	if errors.As(cause, &ga) {
		if ga.GoAway.Reason == pb.GoAway_REASON_REPLACED {
			return 0, true // another connection took the session over
		}
		return time.Duration(ga.GoAway.ReconnectDelayMs) * time.Millisecond, false
	}
	if c.stopAfter(cause, 0) {
		return 0, true
	}
	return c.opts.Reconnect.afterLoss(), false
}

// stopAfter decides whether err (a closed session or a failed reconnect) stops the client for
// good, refusals being the consecutive auth refusals so far: errors the next handshake would
// hit again stop it; auth refusals do so only without a TokenSource or after AuthAttempts.
func (c *Client) stopAfter(err error, refusals int) bool {
	var se *ServerError
	if !errors.As(err, &se) {
		return false // transport errors, token source errors: retried with backoff
	}
	switch {
	case se.Code == pb.ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION:
		return true
	case !isAuthRefusal(err):
		return false
	case se.Message == reasonWebhookUnavailable:
		return false // the gateway's auth webhook failed, not the token
	case c.opts.TokenSource == nil:
		return true
	default:
		return c.opts.AuthAttempts >= 0 && refusals >= c.opts.AuthAttempts
	}
}

// reasonWebhookUnavailable is the UNAUTHENTICATED message the gateway sends when its auth
// webhook could not answer (auth.ReasonWebhookUnavailable).
const reasonWebhookUnavailable = "webhook_unavailable"

// isAuthRefusal: the gateway refused the token (at the handshake) or closed the session
// because its token expired.
func isAuthRefusal(err error) bool {
	var se *ServerError
	return errors.As(err, &se) &&
		(se.Code == pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED || se.Code == pb.ErrorCode_ERROR_CODE_TOKEN_EXPIRED)
}

// TokenSourceError is a reconnect that failed because the TokenSource returned an error.
type TokenSourceError struct{ Err error }

func (e *TokenSourceError) Error() string { return "client: token source: " + e.Err.Error() }
func (e *TokenSourceError) Unwrap() error { return e.Err }

func (c *Client) finish(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// current waits for a live connection.
func (c *Client) current(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		cn, up, err := c.cur, c.up, c.err
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if cn != nil {
			return cn, nil
		}
		select {
		case <-up:
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// next waits for a live connection other than old (which detached itself on GOAWAY).
func (c *Client) next(ctx context.Context, old *conn) (*conn, error) {
	cn, err := c.current(ctx)
	if err == nil && cn == old {
		return nil, errors.New("client: internal error: a leaving connection is still current")
	}
	return cn, err
}

// maxResends bounds how often one request is resent after DRAINING answers (each resend goes
// to a newer connection, so more than a couple means every gateway is draining).
const maxResends = 3

// RequestOption adjusts a request.
type RequestOption func(*pb.Request)

// WithHeaders forwards metadata to the backend.
func WithHeaders(h map[string]string) RequestOption { return func(r *pb.Request) { r.Headers = h } }

// WithTimeout asks the gateway to give up on the backend sooner than the route's timeout.
func WithTimeout(d time.Duration) RequestOption {
	return func(r *pb.Request) { r.TimeoutMs = uint32(d.Milliseconds()) }
}

// Request calls method on a backend service and returns its response. A response whose Code
// is not OK says why the gateway could not get an answer (no route, timeout, rate limited...).
// A request in flight when its connection dies fails with ErrConnectionLost: whether the
// backend saw it is unknown, so only the caller can decide to retry.
func (c *Client) Request(ctx context.Context, service, method string, payload []byte, opts ...RequestOption) (*pb.Response, error) {
	cn, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	req := &pb.Request{Service: service, Method: method, Payload: payload}
	for _, o := range opts {
		o(req)
	}
	for resends := 0; ; resends++ {
		f, err := cn.call(ctx, &pb.Frame{Body: &pb.Frame_Request{Request: req}})
		if err == nil && f.GetResponse().GetCode() == pb.ErrorCode_ERROR_CODE_DRAINING && resends < maxResends {
			// It crossed the GOAWAY: the gateway did not forward it. Same as not sent.
			err = errLeaving
		}
		if errors.Is(err, errLeaving) {
			// Not sent (or refused unforwarded): send it on the next connection.
			if cn, err = c.next(ctx, cn); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return f.GetResponse(), nil
	}
}

// Ping measures a round trip to the gateway.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	cn, err := c.current(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := cn.call(ctx, &pb.Frame{Body: &pb.Frame_Ping{Ping: &pb.Ping{ClientTimeMs: start.UnixMilli()}}}); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// SessionID is the session's id (assigned by the gateway when none was given).
func (c *Client) SessionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID
}

// Done is closed when the client stopped for good; Err says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the client stopped (nil while running).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the session's connection and stops reconnecting.
func (c *Client) Close() error {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
	return nil
}
