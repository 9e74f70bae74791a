// Package baseline is the comparison point of the gateway's benchmarks: a goroutine-per-
// connection server on the standard library's net package that speaks the same protocol with
// the same semantics for everything the benchmark exercises — handshake (token verified by the
// same gateway/auth verifier, HANDSHAKE_ACK), PING→PONG, REQUEST→RESPONSE through the same
// gateway/uplink.Router, per-session rate limit, handshake and idle timeouts, max connections,
// session replacement — and reads the same configuration file (gateway/config).
//
// It is deliberately the straightforward design a team would write first: one reader goroutine
// per connection with a bufio.Reader, a bufio.Writer guarded by a mutex, one goroutine per
// uplink call, read deadlines for the timeouts. It is not meant for production.
package baseline

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/tcpgateway/tcpgateway/gateway/auth"
	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/uplink"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// writeTimeout bounds one flush to a client, as the gateway's does.
const writeTimeout = 15 * time.Second

// Server is a running baseline.
type Server struct {
	cfg      *config.Config
	limits   config.Limits
	verifier auth.Verifier
	router   *uplink.Router
	m        *metrics.Gateway
	log      *slog.Logger

	conns atomic.Int64

	mu       sync.Mutex // guards sessions, ln, closed
	sessions map[string]*conn
	ln       net.Listener
	closed   bool
	all      map[*conn]struct{}

	wg sync.WaitGroup // connection and request goroutines
}

// New builds a baseline server from a loaded configuration: the same auth verifier and uplink
// router as the gateway, with the same uplink metrics.
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	verifier, err := auth.New(cfg.Auth, auth.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	m := metrics.New(prometheus.NewRegistry())
	router, err := uplink.NewRouter(cfg.Routes, uplink.Options{
		MaxResponseBytes: cfg.Limits.MaxFrameBytes,
		Observe:          observe(m),
	})
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, limits: cfg.Limits, verifier: verifier, router: router, m: m, log: log,
		sessions: map[string]*conn{}, all: map[*conn]struct{}{}}, nil
}

// observe is the gateway's uplink Observe hook (server.ObserveUplink), so that both servers
// spend the same on metrics per request.
func observe(m *metrics.Gateway) func(string, uplink.Code, int, time.Duration) {
	return func(service string, code uplink.Code, status int, elapsed time.Duration) {
		m.Requests.WithLabelValues(service, string(code)).Inc()
		label := string(code)
		if code == uplink.CodeOK {
			label = strconv.Itoa(status)
		}
		m.UplinkLatency.WithLabelValues(service, label).Observe(elapsed.Seconds())
	}
}

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// EMFILE and friends: back off as net/http does instead of spinning.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.wg.Add(1)
		go s.serve(nc)
	}
}

// Close stops accepting, closes every connection and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	ln := s.ln
	for c := range s.all {
		_ = c.nc.Close()
	}
	s.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	s.wg.Wait()
	s.router.Close()
	return err
}

// Connections is the number of open client connections.
func (s *Server) Connections() int64 { return s.conns.Load() }

// conn is one client connection. Its reader goroutine owns everything but the writer.
type conn struct {
	srv    *Server
	nc     net.Conn
	remote string

	wmu sync.Mutex
	w   *bufio.Writer

	limiter   *rate.Limiter
	sessionID string
	userID    string
	deviceID  string
}

func (s *Server) serve(nc net.Conn) {
	defer s.wg.Done()
	c := &conn{srv: s, nc: nc, remote: nc.RemoteAddr().String(), w: bufio.NewWriter(nc)}
	n := s.conns.Add(1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.conns.Add(-1)
		_ = nc.Close()
		return
	}
	s.all[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.all, c)
		if c.sessionID != "" && s.sessions[c.sessionID] == c {
			delete(s.sessions, c.sessionID)
		}
		s.mu.Unlock()
		s.conns.Add(-1)
		_ = nc.Close()
	}()
	if n > int64(s.limits.MaxConnections) {
		c.fail(pb.ErrorCode_ERROR_CODE_SERVER_FULL, "the gateway holds its maximum of connections")
		return
	}

	r := bufio.NewReader(nc)
	_ = nc.SetReadDeadline(time.Now().Add(s.limits.HandshakeTimeout.Duration))
	f, buf, err := protocol.Read(r, s.limits.MaxFrameBytes, nil)
	if err != nil {
		c.readFailed(err, pb.ErrorCode_ERROR_CODE_HANDSHAKE_TIMEOUT, "no handshake within "+s.limits.HandshakeTimeout.String())
		return
	}
	hs := f.GetHandshake()
	if hs == nil {
		c.fail(pb.ErrorCode_ERROR_CODE_HANDSHAKE_REQUIRED, "the first frame must be HANDSHAKE")
		return
	}
	if !c.handshake(hs) {
		return
	}
	for {
		_ = nc.SetReadDeadline(time.Now().Add(s.limits.IdleTimeout.Duration))
		f, buf, err = protocol.Read(r, s.limits.MaxFrameBytes, buf)
		if err != nil {
			c.readFailed(err, pb.ErrorCode_ERROR_CODE_IDLE_TIMEOUT, "nothing received for "+s.limits.IdleTimeout.String())
			return
		}
		switch b := f.Body.(type) {
		case *pb.Frame_Ping:
			c.send(&pb.Frame{Seq: f.Seq, Body: &pb.Frame_Pong{Pong: &pb.Pong{
				ClientTimeMs: b.Ping.ClientTimeMs, ServerTimeMs: time.Now().UnixMilli(),
			}}})
		case *pb.Frame_Request:
			c.request(f.Seq, b.Request)
		case *pb.Frame_PushAck, *pb.Frame_PushReply:
			// No downlink in the baseline.
		case *pb.Frame_Handshake:
			c.fail(pb.ErrorCode_ERROR_CODE_HANDSHAKE_REQUIRED, "second HANDSHAKE on one connection")
			return
		default:
			c.fail(pb.ErrorCode_ERROR_CODE_BAD_FRAME, "clients may not send "+protocol.Kind(f))
			return
		}
	}
}

// readFailed answers a read error: a framing violation or a timeout gets its ERROR frame, a
// closed peer nothing.
func (c *conn) readFailed(err error, onTimeout pb.ErrorCode, detail string) {
	if fe, ok := protocol.IsFrameError(err); ok {
		c.fail(fe.Code, fe.Detail)
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.fail(onTimeout, detail)
	}
}

func (c *conn) handshake(hs *pb.Handshake) bool {
	s := c.srv
	if hs.ProtocolVersion < protocol.Version {
		c.fail(pb.ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION, fmt.Sprintf("this server speaks protocol_version %d", protocol.Version))
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.limits.HandshakeTimeout.Duration)
	id, err := s.verifier.Verify(ctx, auth.Request{Token: hs.Token, DeviceID: hs.DeviceId, ClientAddress: c.remote})
	cancel()
	if err != nil {
		c.fail(pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, auth.ReasonOf(err))
		return false
	}
	c.sessionID = hs.SessionId
	if c.sessionID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		c.sessionID = base64.RawURLEncoding.EncodeToString(b[:])
	}
	c.userID, c.deviceID = id.UserID, hs.DeviceId
	c.limiter = rate.NewLimiter(rate.Limit(s.limits.RequestsPerSecond), s.limits.RequestBurst)
	if err := c.send(&pb.Frame{Body: &pb.Frame_HandshakeAck{HandshakeAck: &pb.HandshakeAck{
		ProtocolVersion:     protocol.Version,
		SessionId:           c.sessionID,
		UserId:              id.UserID,
		HeartbeatIntervalMs: uint32(s.limits.HeartbeatInterval.Milliseconds()),
		IdleTimeoutMs:       uint32(s.limits.IdleTimeout.Milliseconds()),
		MaxFrameBytes:       uint32(s.limits.MaxFrameBytes),
		ServerId:            s.cfg.ServerID,
		ServerTimeMs:        time.Now().UnixMilli(),
	}}}); err != nil {
		return false
	}
	s.mu.Lock()
	old := s.sessions[c.sessionID]
	s.sessions[c.sessionID] = c
	s.mu.Unlock()
	if old != nil {
		old.goAway()
	}
	return true
}

// request checks the rate limit on the reader and calls the backend on a goroutine of its own.
func (c *conn) request(seq uint64, req *pb.Request) {
	if !c.limiter.Allow() {
		service := req.Service
		if !c.srv.router.Has(service) {
			service = ""
		}
		c.srv.m.Requests.WithLabelValues(service, string(uplink.CodeRateLimited)).Inc()
		c.respond(seq, uplink.Result{Code: uplink.CodeRateLimited, Message: "request rate limit exceeded"})
		return
	}
	call := uplink.Call{
		Service: req.Service,
		Method:  req.Method,
		Payload: req.Payload,
		Headers: req.Headers,
		Timeout: time.Duration(req.TimeoutMs) * time.Millisecond,
		Identity: uplink.Identity{
			UserID: c.userID, SessionID: c.sessionID, DeviceID: c.deviceID,
			ClientAddress: c.remote, Seq: seq,
		},
	}
	c.srv.wg.Add(1)
	go func() {
		defer c.srv.wg.Done()
		c.respond(seq, c.srv.router.Do(context.Background(), call))
	}()
}

var codeToProto = map[uplink.Code]pb.ErrorCode{
	uplink.CodeOK:              pb.ErrorCode_ERROR_CODE_OK,
	uplink.CodeNoRoute:         pb.ErrorCode_ERROR_CODE_NO_ROUTE,
	uplink.CodeTimeout:         pb.ErrorCode_ERROR_CODE_TIMEOUT,
	uplink.CodeBackendError:    pb.ErrorCode_ERROR_CODE_BACKEND_ERROR,
	uplink.CodeRateLimited:     pb.ErrorCode_ERROR_CODE_RATE_LIMITED,
	uplink.CodeTooManyInFlight: pb.ErrorCode_ERROR_CODE_TOO_MANY_IN_FLIGHT,
	uplink.CodeDraining:        pb.ErrorCode_ERROR_CODE_DRAINING,
}

func (c *conn) respond(seq uint64, res uplink.Result) {
	_ = c.send(&pb.Frame{Seq: seq, Body: &pb.Frame_Response{Response: &pb.Response{
		Code:    codeToProto[res.Code],
		Status:  int32(res.Status),
		Payload: res.Payload,
		Headers: res.Headers,
		Message: res.Message,
	}}})
}

// send encodes f and writes it at once under the writer's mutex. A failed write closes the
// connection, which ends its reader.
func (c *conn) send(f *pb.Frame) error {
	b, err := protocol.Append(nil, f, c.srv.limits.MaxFrameBytes)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err = c.w.Write(b); err == nil {
		err = c.w.Flush()
	}
	if err != nil {
		_ = c.nc.Close()
	}
	return err
}

// fail sends an ERROR frame; the caller returns and the connection closes.
func (c *conn) fail(code pb.ErrorCode, detail string) {
	_ = c.send(&pb.Frame{Body: &pb.Frame_Error{Error: &pb.Error{Code: code, Message: detail}}})
}

// goAway tells a replaced session to leave and closes it.
func (c *conn) goAway() {
	_ = c.send(&pb.Frame{Body: &pb.Frame_Goaway{Goaway: &pb.GoAway{Reason: pb.GoAway_REASON_REPLACED}}})
	_ = c.nc.Close()
}
