package hostile

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// dialFrom connects to the gateway from a given loopback source address, as clients behind
// different public addresses would.
func (g *Gateway) dialFrom(source string) *Conn {
	g.t.Helper()
	d := net.Dialer{Timeout: ReadTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	nc, err := d.Dial("tcp", g.ClientAddr)
	if err != nil {
		g.t.Fatalf("dial from %s: %v", source, err)
	}
	g.t.Cleanup(func() { _ = nc.Close() })
	return &Conn{t: g.t, nc: nc, r: bufio.NewReader(nc)}
}

// Finding 5: 2,000 connections from one address all succeeded. Now an address holds at most
// limits.perAddress.maxConnections (20 here, to keep the test small) and the next one is
// refused with a fatal ERROR ADDRESS_LIMIT; other addresses are unaffected.
func TestConnectionsFromOneAddressAreBounded(t *testing.T) {
	const perAddress, attempts = 20, 60
	g := Start(t, Options{Configure: func(c *config.Config) {
		c.Limits.PerAddress.MaxConnections = perAddress
		c.Limits.HandshakeTimeout = config.Duration{Duration: time.Minute}
	}})
	refusals := g.Log.TapContaining("refusing connections")
	var held []*Conn
	for range perAddress {
		held = append(held, g.dialFrom("127.0.0.2"))
	}
	wait.For(t, 10*time.Second, "the gateway to accept the first connections", func() bool {
		return g.Metric("tcpgw_connections") == perAddress
	})
	for i := range attempts - perAddress {
		c := g.dialFrom("127.0.0.2")
		e := c.ExpectError(pb.ErrorCode_ERROR_CODE_ADDRESS_LIMIT)
		if !e.Fatal {
			t.Fatalf("refusal %d: ERROR ADDRESS_LIMIT not fatal", i)
		}
		c.ExpectClosed()
	}
	// The held connections still work, and so does another address.
	if ack := held[0].Handshake(g.Token("first"), nil); ack.UserId != "first" {
		t.Fatalf("held connection: ack for %q", ack.UserId)
	}
	if ack := g.dialFrom("127.0.0.3").Handshake(g.Token("neighbour"), nil); ack.UserId != "neighbour" {
		t.Fatalf("another address: ack for %q", ack.UserId)
	}
	if got := g.Metric("tcpgw_address_limited_total", "limit", "connections"); got != attempts-perAddress {
		t.Errorf("tcpgw_address_limited_total{limit=connections} = %v, want %d", got, attempts-perAddress)
	}
	if got := g.Metric("tcpgw_connections_refused_total", "reason", "address_limit"); got != attempts-perAddress {
		t.Errorf("tcpgw_connections_refused_total{reason=address_limit} = %v, want %d", got, attempts-perAddress)
	}
	// A slot frees when a connection of the address closes.
	held[1].Close()
	wait.For(t, 10*time.Second, "the closed connection to leave", func() bool {
		return g.Metric("tcpgw_connections") == perAddress // perAddress-1 held + the neighbour
	})
	if ack := g.dialFrom("127.0.0.2").Handshake(g.Token("again"), nil); ack.UserId != "again" {
		t.Fatalf("after a close: ack for %q", ack.UserId)
	}
	// 40 refusals in a burst make a few log lines, not 40.
	if n := refusals.Count(); n < 1 || n > 5 {
		t.Errorf("%d log lines for %d refusals, want 1 to 5 (rate-limited)", n, attempts-perAddress)
	}
}

// The default per-address bound is the 1000 connections docs/operator.md states.
func TestDefaultAddressLimitIs1000Connections(t *testing.T) {
	const documented = 1000
	if config.DefaultAddressMaxConnections != documented {
		t.Fatalf("config.DefaultAddressMaxConnections = %d, the docs say %d", config.DefaultAddressMaxConnections, documented)
	}
	g := Start(t, Options{Configure: func(c *config.Config) {
		c.Limits.HandshakeTimeout = config.Duration{Duration: 2 * time.Minute}
	}})
	for range documented {
		g.dialFrom("127.0.0.4")
	}
	wait.For(t, 30*time.Second, "the gateway to accept 1000 connections", func() bool {
		return g.Metric("tcpgw_connections") == documented
	})
	c := g.dialFrom("127.0.0.4")
	c.ExpectError(pb.ErrorCode_ERROR_CODE_ADDRESS_LIMIT)
	c.ExpectClosed()
}

// Finding 5: one address could start handshakes (token verifications, webhook calls) as fast
// as it liked. Now limits.perAddress.handshakesPerSecond and handshakeBurst bound them;
// closing and reconnecting does not refill the bucket.
func TestHandshakeFloodFromOneAddressIsRateLimited(t *testing.T) {
	const burst = 5
	g := Start(t, Options{Configure: func(c *config.Config) {
		c.Limits.PerAddress.HandshakesPerSecond = 0.01 // one every 100 s: none refills during the test
		c.Limits.PerAddress.HandshakeBurst = burst
	}})
	for i := range burst {
		c := g.dialFrom("127.0.0.5")
		if ack := c.Handshake(g.Token("flood"), nil); ack.UserId != "flood" {
			t.Fatalf("handshake %d: ack for %q", i, ack.UserId)
		}
		c.Close()
	}
	for range 3 {
		c := g.dialFrom("127.0.0.5")
		c.Send(HandshakeFrame(g.Token("flood")))
		if e := c.ExpectError(pb.ErrorCode_ERROR_CODE_ADDRESS_LIMIT); !e.Fatal {
			t.Fatal("ERROR ADDRESS_LIMIT not fatal")
		}
		c.ExpectClosed()
	}
	// Another address has its own bucket.
	if ack := g.dialFrom("127.0.0.6").Handshake(g.Token("other"), nil); ack.UserId != "other" {
		t.Fatalf("another address: ack for %q", ack.UserId)
	}
	if got := g.Metric("tcpgw_address_limited_total", "limit", "handshake_rate"); got != 3 {
		t.Errorf("tcpgw_address_limited_total{limit=handshake_rate} = %v, want 3", got)
	}
	if got := g.Metric("tcpgw_handshakes_total", "result", "address_limit"); got != 3 {
		t.Errorf("tcpgw_handshakes_total{result=address_limit} = %v, want 3", got)
	}
	if got := g.Metric("tcpgw_addresses_tracked"); got != 2 {
		t.Errorf("tcpgw_addresses_tracked = %v, want 2 (both buckets still refilling)", got)
	}
}
