package hostile

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// Finding 5: before its handshake a client could make the gateway wait for a 64 KiB frame
// (the full frame limit) until the handshake timeout. Now limits.maxHandshakeFrameBytes
// (8 KiB) applies until the handshake, and a larger length prefix is refused at once.
func TestLargeFrameBeforeTheHandshakeIsRefusedAtOnce(t *testing.T) {
	g := Start(t, Options{Configure: func(c *config.Config) {
		c.Limits.HandshakeTimeout = config.Duration{Duration: 30 * time.Second}
	}})
	c := g.Dial()
	var head [4]byte
	binary.BigEndian.PutUint32(head[:], 64<<10) // a full-size frame whose body never comes
	c.SendRaw(head[:])
	// Refused on the length prefix alone, long before the 30 s handshake timeout.
	f, err := c.ReadFrame(5 * time.Second)
	if err != nil {
		t.Fatalf("no answer to a 64 KiB length prefix before the handshake: %v", err)
	}
	if e := f.GetError(); e == nil || e.Code != pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE {
		t.Fatalf("got %s, want ERROR FRAME_TOO_LARGE", describe(f))
	}
	c.ExpectClosed()

	// A handshake with a large token (~6 KiB, under the 8 KiB default) still works.
	token := g.SignToken(jwt.MapClaims{"sub": "alice", "iss": Issuer, "aud": Audience,
		"exp": time.Now().Add(time.Hour).Unix(), "pad": strings.Repeat("p", 4000)})
	if len(token) < 5000 || len(token) > 7000 {
		t.Fatalf("token of %d bytes, want about 6 KiB", len(token))
	}
	if ack := g.Dial().Handshake(token, nil); ack.UserId != "alice" {
		t.Fatalf("handshake ack for %q", ack.UserId)
	}
}

// Finding 5: connections counted toward maxConnections before their handshake, so silent
// connections kept honest clients out (ERROR SERVER_FULL). Now maxConnections counts
// established sessions and limits.maxPendingHandshakes bounds the silent ones apart.
func TestSilentConnectionsDoNotKeepClientsOut(t *testing.T) {
	const maxSessions, maxPending = 3, 10
	g := Start(t, Options{Configure: func(c *config.Config) {
		c.Limits.MaxConnections = maxSessions
		c.Limits.MaxPendingHandshakes = maxPending
		c.Limits.HandshakeTimeout = config.Duration{Duration: 30 * time.Second}
	}})
	// The attacker holds all but one pending slot with connections that say nothing.
	for range maxPending - 1 {
		g.Dial()
	}
	wait.For(t, 5*time.Second, "tcpgw_connections to count the silent connections", func() bool {
		return g.Metric("tcpgw_connections") == maxPending-1
	})
	// Honest clients still establish every session the pod allows, one after the other.
	for i := range maxSessions {
		if ack := g.Dial().Handshake(g.Token("honest"), nil); ack.UserId != "honest" {
			t.Fatalf("honest client %d: ack for %q", i, ack.UserId)
		}
	}
	if got := g.Metric("tcpgw_pending_handshakes"); got != maxPending-1 {
		t.Errorf("tcpgw_pending_handshakes = %v, want the %d silent connections", got, maxPending-1)
	}
	// A handshake beyond maxConnections gets SERVER_FULL at the handshake.
	over := g.Dial()
	over.Send(HandshakeFrame(g.Token("late")))
	over.ExpectError(pb.ErrorCode_ERROR_CODE_SERVER_FULL)
	over.ExpectClosed()
	if got := g.Metric("tcpgw_connections_refused_total", "reason", "server_full"); got != 1 {
		t.Errorf("tcpgw_connections_refused_total{reason=server_full} = %v, want 1", got)
	}
	// One more silent connection fills the pending bound; the next is refused at once.
	g.Dial()
	extra := g.Dial()
	extra.ExpectError(pb.ErrorCode_ERROR_CODE_SERVER_FULL)
	extra.ExpectClosed()
	if got := g.Metric("tcpgw_connections_refused_total", "reason", "pending_handshakes"); got != 1 {
		t.Errorf("tcpgw_connections_refused_total{reason=pending_handshakes} = %v, want 1", got)
	}
}

// Finding 6: a slow-consumer close never sent the ERROR SLOW_CONSUMER that protocol.md
// promises (the queue was full, so the ERROR could not be queued); the client saw the frames
// and then only FIN or RST. Now the queue is dropped and the ERROR takes its place.
func TestSlowConsumerReceivesItsErrorBeforeTheClose(t *testing.T) {
	g := Start(t, Options{Configure: func(c *config.Config) {
		c.Limits.OutboundQueueFrames = 8
	}})
	c := g.Dial()
	c.Handshake(g.Token("slow"), nil)

	// The client asks for large responses and reads none: kernel buffers fill, then the
	// 8-frame queue, and the session is closed as a slow consumer.
	stallUntil(t, g, c, 32<<10, "tcpgw_outbound_drops_total{reason=slow_consumer}", func() bool {
		return g.Metric("tcpgw_outbound_drops_total", "reason", "slow_consumer") >= 1
	})
	expectSlowConsumerError(t, c)
}

// Finding 5: no global bound on outbound queues (1 MiB × 100k connections). Now
// limits.outboundBudgetBytes bounds them together, and exceeding it closes the slowest
// consumer (the oldest stalled write) with ERROR SLOW_CONSUMER, not the session whose send
// crossed the budget.
func TestOutboundBudgetShedsTheSlowestConsumerFirst(t *testing.T) {
	const budget = 512 << 10
	g := Start(t, Options{Configure: func(c *config.Config) {
		c.Limits.MaxFrameBytes = 16 << 10
		c.Limits.OutboundQueueFrames = 100000
		c.Limits.OutboundQueueBytes = budget
		c.Limits.OutboundBudgetBytes = budget
	}})
	first := g.Dial()
	first.Handshake(g.Token("first"), nil)
	second := g.Dial()
	second.Handshake(g.Token("second"), nil)

	// The first stops reading and holds a third of the budget unwritten...
	firstSent := stallUntil(t, g, first, 8<<10, "tcpgw_outbound_bytes >= budget/3", func() bool {
		return g.Metric("tcpgw_outbound_bytes") >= budget/3
	})
	// ...then the second, later, takes the total over the budget: the first is shed.
	secondSent := stallUntil(t, g, second, 8<<10, "tcpgw_outbound_shed_total >= 1", func() bool {
		return g.Metric("tcpgw_outbound_shed_total") >= 1
	})
	if got := g.Metric("tcpgw_outbound_shed_total"); got != 1 {
		t.Fatalf("tcpgw_outbound_shed_total = %v, want 1 (the slowest consumer only)", got)
	}
	if got := g.Metric("tcpgw_outbound_budget_bytes"); got != budget {
		t.Errorf("tcpgw_outbound_budget_bytes = %v, want %d", got, budget)
	}
	if got := g.Metric("tcpgw_outbound_bytes"); got > budget {
		t.Errorf("tcpgw_outbound_bytes = %v after shedding, above the budget %d", got, budget)
	}
	expectSlowConsumerError(t, first)
	t.Logf("first sent %d requests, second %d", firstSent, secondSent)

	// The second reads again and gets every response, then goes on working.
	for i := range secondSent {
		f := second.Read()
		if f.GetResponse() == nil {
			t.Fatalf("second client, frame %d: got %s, want its RESPONSE", i, describe(f))
		}
	}
	second.Send(&pb.Frame{Seq: 1 << 20, Body: &pb.Frame_Ping{Ping: &pb.Ping{}}})
	if f := second.Read(); f.GetPong() == nil {
		t.Fatalf("second client after the shedding: got %s, want PONG", describe(f))
	}
}

// stallUntil makes c ask for responses of size bytes without reading them, one request at a
// time, until cond holds (checked after each request); it returns how many it sent.
func stallUntil(t *testing.T, g *Gateway, c *Conn, size int, what string, cond func() bool) int {
	t.Helper()
	payload := make([]byte, size)
	start := time.Now()
	defer func() { t.Logf("%s: %s", what, time.Since(start)) }()
	for i := range 5000 {
		c.Send(&pb.Frame{Seq: uint64(i + 1), Body: &pb.Frame_Request{Request: &pb.Request{
			Service: "echo", Method: "big", Payload: payload,
		}}})
		if cond() {
			return i + 1
		}
	}
	t.Fatalf("%s: not reached after 5000 unread responses", what)
	return 0
}

// expectSlowConsumerError reads what the gateway wrote before the close: responses, then
// ERROR SLOW_CONSUMER, then a clean close.
func expectSlowConsumerError(t *testing.T, c *Conn) {
	t.Helper()
	for i := range 10000 {
		f, err := c.ReadFrame(ReadTimeout)
		if err != nil {
			t.Fatalf("after %d frames: %v, want ERROR SLOW_CONSUMER first", i, err)
		}
		if f.GetResponse() != nil {
			continue
		}
		if e := f.GetError(); e == nil || e.Code != pb.ErrorCode_ERROR_CODE_SLOW_CONSUMER {
			t.Fatalf("got %s, want ERROR SLOW_CONSUMER", describe(f))
		}
		c.ExpectClosed()
		return
	}
	t.Fatal("no ERROR SLOW_CONSUMER within 10000 frames")
}
