package server_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

func TestHandshakeAndRequestRoundTrip(t *testing.T) {
	h := start(t, nil, nil)
	c := h.connect("alice", "")
	if c.SessionID() == "" {
		t.Fatal("no session id assigned")
	}
	resp, err := c.Request(ctx(t), "echo", "chat/send", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != pb.ErrorCode_ERROR_CODE_OK || resp.Status != http.StatusOK || string(resp.Payload) != "hello" {
		t.Fatalf("response %v", resp)
	}
	if resp.Headers["user"] != "alice" || resp.Headers["path"] != "/chat/send" {
		t.Errorf("backend saw identity %q and path %q", resp.Headers["user"], resp.Headers["path"])
	}
	if _, err := c.Ping(ctx(t)); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if got := counter(h.m.Handshakes.WithLabelValues("ok")); got != 1 {
		t.Errorf("handshakes{ok} = %v", got)
	}
	if got := counter(h.m.Requests.WithLabelValues("echo", "ok")); got != 1 {
		t.Errorf("requests{echo,ok} = %v", got)
	}
}

func TestHandshakeRejections(t *testing.T) {
	h := start(t, nil, nil)
	expired, _ := func() (string, error) {
		return signExpired(h)
	}()
	tests := []struct {
		name   string
		token  string
		result string
	}{
		{"missing token", "", "missing_token"},
		{"bad signature", h.token("alice")[:20] + "x" + h.token("alice")[21:], "invalid_token"},
		{"not a jwt", "hello", "invalid_token"},
		{"expired", expired, "expired_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.Connect(ctx(t), client.Options{Addr: h.addr, Token: tt.token, NoReconnect: true})
			var se *client.ServerError
			if !errors.As(err, &se) || se.Code != pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED || se.Message != tt.result {
				t.Fatalf("Connect error = %v, want UNAUTHENTICATED %s", err, tt.result)
			}
			if got := counter(h.m.Handshakes.WithLabelValues(tt.result)); got < 1 {
				t.Errorf("handshakes{%s} = %v", tt.result, got)
			}
		})
	}
}

func TestFirstFrameMustBeHandshake(t *testing.T) {
	h := start(t, nil, nil)
	r := h.raw()
	r.send(&pb.Frame{Body: &pb.Frame_Ping{Ping: &pb.Ping{}}})
	r.expectError(pb.ErrorCode_ERROR_CODE_HANDSHAKE_REQUIRED)

	for _, v := range []uint32{0, 1} {
		r = h.raw()
		r.send(&pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{ProtocolVersion: v, Token: h.token("a")}}})
		r.expectError(pb.ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION)
	}
	// A newer client is answered with the version the gateway speaks.
	r = h.raw()
	if ack := r.handshakeVersion(h.token("a"), protocol.Version+1); ack.ProtocolVersion != protocol.Version {
		t.Fatalf("HandshakeAck.protocol_version = %d, want %d", ack.ProtocolVersion, protocol.Version)
	}
}

// An attacker who learnt (or guessed) another user's session id opens a session with it: that
// must be a session of the attacker's own, and the victim's stays connected and registered.
func TestSessionIDOfAnotherUserNeitherReplacesNorJoinsIt(t *testing.T) {
	h := start(t, nil, nil)
	victim := h.connect("alice", "s-1")
	attacker := h.raw()
	ack := attacker.handshakeSession(h.token("mallory"), "s-1")
	if ack.UserId != "mallory" || ack.SessionId != "s-1" {
		t.Fatalf("attacker's ack = %v", ack)
	}
	eventually(t, "both sessions registered", func() bool { return h.srv.Sessions().Len() == 2 })
	if _, err := victim.Ping(ctx(t)); err != nil {
		t.Fatalf("victim's session broken by another user's handshake: %v", err)
	}
	if s, ok := h.srv.Sessions().Get(session.Key{UserID: "alice", SessionID: "s-1"}); !ok || s.UserID != "alice" {
		t.Fatal("victim's session no longer registered")
	}
	if got := counter(h.m.Closes.WithLabelValues(string(session.ReasonReplaced))); got != 0 {
		t.Fatalf("%v sessions replaced", got)
	}
}

func TestLateHandshakeTimesOut(t *testing.T) {
	h := start(t, nil, func(c *config.Config) { c.Limits.HandshakeTimeout = config.Duration{Duration: 300 * time.Millisecond} })
	r := h.raw() // says nothing
	r.expectError(pb.ErrorCode_ERROR_CODE_HANDSHAKE_TIMEOUT)
	// Counted right after the socket closes, which the client may notice first.
	eventually(t, "closes{handshake_timeout}", func() bool {
		return counter(h.m.Closes.WithLabelValues(string(session.ReasonHandshakeTimeout))) == 1
	})
}

func TestSecondConnectionReplacesTheFirstWithoutTearingItDown(t *testing.T) {
	h := start(t, nil, nil)
	first := h.connect("alice", "s-1")
	second := h.connect("alice", "s-1")

	select {
	case <-first.Done():
	case <-time.After(wait):
		t.Fatal("first connection not told to go away")
	}
	var ga *client.GoAwayError
	if !errors.As(first.Err(), &ga) || ga.GoAway.Reason != pb.GoAway_REASON_REPLACED {
		t.Fatalf("first ended with %v, want GOAWAY REPLACED", first.Err())
	}
	// The old connection is gone; the new one must still be registered and working.
	eventually(t, "the replaced connection's close", func() bool {
		return counter(h.m.Closes.WithLabelValues(string(session.ReasonReplaced))) == 1
	})
	if _, err := second.Ping(ctx(t)); err != nil {
		t.Fatalf("replacement broken after the old close: %v", err)
	}
	if s, ok := h.srv.Sessions().Get(session.Key{UserID: "alice", SessionID: "s-1"}); !ok || s.UserID != "alice" || h.srv.Sessions().Len() != 1 {
		t.Fatalf("session s-1 not registered after the replace (len %d)", h.srv.Sessions().Len())
	}
}

func TestIdleSessionsExpireWhileHeartbeatingOnesStay(t *testing.T) {
	h := start(t, nil, func(c *config.Config) {
		c.Limits.HeartbeatInterval = config.Duration{Duration: 100 * time.Millisecond}
		c.Limits.IdleTimeout = config.Duration{Duration: 600 * time.Millisecond}
	})
	alive := h.connect("bob", "") // the SDK pings every 100ms
	silent := h.raw()
	silent.handshake(h.token("carol"))
	silent.expectError(pb.ErrorCode_ERROR_CODE_IDLE_TIMEOUT)
	// The heartbeating session outlived a whole idle timeout (the silent one's) and works.
	if _, err := alive.Ping(ctx(t)); err != nil {
		t.Fatalf("heartbeating session closed: %v (closed by: %v)", err, alive.Err())
	}
}

func TestUplinkErrorsAreTyped(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	backend := http.NewServeMux()
	backend.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	deadPort := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return "http://" + ln.Addr().String()
	}()
	h := start(t, backend, func(c *config.Config) {
		c.Routes = append(c.Routes,
			config.Route{Service: "slow", URL: "", Timeout: config.Duration{Duration: 200 * time.Millisecond}},
			config.Route{Service: "down", URL: deadPort},
			config.Route{Service: "single", URL: "", MaxInFlight: 1},
		)
		for i := range c.Routes {
			if c.Routes[i].URL == "" {
				c.Routes[i].URL = c.Routes[0].URL
			}
		}
	})
	c := h.connect("dave", "")

	code := func(service, method string) pb.ErrorCode {
		t.Helper()
		resp, err := c.Request(ctx(t), service, method, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Code
	}
	if got := code("nope", "x"); got != pb.ErrorCode_ERROR_CODE_NO_ROUTE {
		t.Errorf("unknown service: %v", got)
	}
	if got := code("slow", "block"); got != pb.ErrorCode_ERROR_CODE_TIMEOUT {
		t.Errorf("slow backend: %v", got)
	}
	<-entered
	if got := code("down", "x"); got != pb.ErrorCode_ERROR_CODE_BACKEND_ERROR {
		t.Errorf("backend down: %v", got)
	}

	// One call holds the single slot; the next is refused at once.
	held := make(chan pb.ErrorCode, 1)
	go func() {
		resp, err := c.Request(ctx(t), "single", "block", nil)
		if err != nil {
			held <- pb.ErrorCode_ERROR_CODE_UNSPECIFIED
			return
		}
		held <- resp.Code
	}()
	<-entered
	if got := code("single", "block"); got != pb.ErrorCode_ERROR_CODE_TOO_MANY_IN_FLIGHT {
		t.Errorf("second call on a full route: %v", got)
	}
	close(release)
	if got := <-held; got != pb.ErrorCode_ERROR_CODE_OK {
		t.Errorf("held call: %v", got)
	}
	// DRAINING is covered by the drain tests.
}

func TestRequestRateIsLimitedPerSession(t *testing.T) {
	h := start(t, nil, func(c *config.Config) {
		c.Limits.RequestsPerSecond = 0.001
		c.Limits.RequestBurst = 2
	})
	c := h.connect("erin", "")
	var codes []pb.ErrorCode
	for range 3 {
		resp, err := c.Request(ctx(t), "echo", "x", nil)
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, resp.Code)
	}
	want := []pb.ErrorCode{pb.ErrorCode_ERROR_CODE_OK, pb.ErrorCode_ERROR_CODE_OK, pb.ErrorCode_ERROR_CODE_RATE_LIMITED}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("codes %v, want %v", codes, want)
		}
	}
	// Another session has its own bucket.
	other := h.connect("frank", "")
	if resp, err := other.Request(ctx(t), "echo", "x", nil); err != nil || resp.Code != pb.ErrorCode_ERROR_CODE_OK {
		t.Fatalf("other session: %v %v", resp, err)
	}
}

func TestMalformedAndOversizedFramesCloseWithTheirReason(t *testing.T) {
	h := start(t, nil, func(c *config.Config) { c.Limits.MaxFrameBytes = 1024 })

	r := h.raw()
	r.handshake(h.token("gina"))
	r.writeBytes([]byte{0, 0, 0, 3, 0xff, 0xff, 0xff})
	r.expectError(pb.ErrorCode_ERROR_CODE_BAD_FRAME)

	// Only the length prefix is sent: the gateway must refuse without waiting for the body.
	r = h.raw()
	r.handshake(h.token("gina"))
	var head [4]byte
	binary.BigEndian.PutUint32(head[:], 1<<20)
	r.writeBytes(head[:])
	r.expectError(pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE)

	r = h.raw()
	r.handshake(h.token("gina"))
	r.send(&pb.Frame{Body: &pb.Frame_Pong{Pong: &pb.Pong{}}})
	r.expectError(pb.ErrorCode_ERROR_CODE_BAD_FRAME)

	for _, reason := range []session.CloseReason{session.ReasonBadFrame, session.ReasonFrameTooLarge} {
		eventually(t, "closes{"+string(reason)+"}", func() bool {
			return counter(h.m.Closes.WithLabelValues(string(reason))) >= 1
		})
	}
}

func TestSlowReaderIsClosedWhileOthersAreUnaffected(t *testing.T) {
	h := start(t, nil, func(c *config.Config) {
		c.Limits.OutboundQueueFrames = 8
		c.Limits.OutboundQueueBytes = 1 << 20
	})
	healthy := h.connect("hank", "")

	slow := h.raw()
	if tcp, ok := slow.nc.(*net.TCPConn); ok {
		_ = tcp.SetReadBuffer(4096)
	}
	ack := slow.handshake(h.token("ivy"))
	// The ack is queued just before the registration: wait for the latter.
	eventually(t, "the slow session's registration", func() bool {
		_, ok := h.srv.Sessions().Get(session.Key{UserID: "ivy", SessionID: ack.SessionId})
		return ok
	})
	sess, _ := h.srv.Sessions().Get(session.Key{UserID: "ivy", SessionID: ack.SessionId})
	frame, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{MessageId: "big", Payload: make([]byte, 32<<10)}}}, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	// The client reads nothing: kernel buffers fill, then the bounded queue, then it is closed.
	for i := 0; i < 10000; i++ {
		h.srv.SendEncoded(sess, "push", frame)
		if closing, _ := sess.Closing(); closing {
			break
		}
	}
	if closing, reason := sess.Closing(); !closing || reason != session.ReasonSlowConsumer {
		t.Fatalf("slow reader: closing=%v reason=%q, want slow_consumer", closing, reason)
	}
	// Its queue is dropped at once: at most the ERROR frame that tells it why is left.
	if frames, bytes := sess.Queued(); frames > 1 || bytes > 200 {
		t.Errorf("slow reader's queue holds %d frames / %d bytes after its close", frames, bytes)
	}
	if got := counter(h.m.QueueDrops.WithLabelValues("slow_consumer")); got != 1 {
		t.Errorf("outbound_drops{slow_consumer} = %v", got)
	}
	if _, err := healthy.Ping(ctx(t)); err != nil {
		t.Fatalf("healthy client affected: %v", err)
	}
	if resp, err := healthy.Request(ctx(t), "echo", "x", []byte("still fine")); err != nil || string(resp.Payload) != "still fine" {
		t.Fatalf("healthy client request: %v %v", resp, err)
	}
	// The slow reader reads again: what was in flight, then ERROR SLOW_CONSUMER, then EOF
	// (it used to get the frames and a bare close).
	slow.expectError(pb.ErrorCode_ERROR_CODE_SLOW_CONSUMER)
}

func TestMaxConnections(t *testing.T) {
	h := start(t, nil, func(c *config.Config) { c.Limits.MaxConnections = 2 })
	a := h.connect("a", "")
	h.connect("b", "")
	// Connections awaiting their handshake do not count: the third is refused at its handshake.
	r := h.raw()
	r.send(&pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{ProtocolVersion: protocol.Version, Token: h.token("c")}}})
	r.expectError(pb.ErrorCode_ERROR_CODE_SERVER_FULL)
	if got := counter(h.m.ConnectionsRefused.WithLabelValues("server_full")); got != 1 {
		t.Errorf("connections_refused{server_full} = %v", got)
	}
	// A slot frees when a client leaves.
	_ = a.Close()
	eventually(t, "the slot to free", func() bool { return counter(h.m.Sessions) == 1 })
	h.connect("c", "")
}
