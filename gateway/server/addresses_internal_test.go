package server

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

func TestAddressKey(t *testing.T) {
	for _, tt := range []struct {
		remote net.Addr
		want   string
	}{
		{&net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 4000}, "203.0.113.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:203.0.113.7"), Port: 4000}, "203.0.113.7"},
		// One subscriber's /64 is one address.
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), Port: 4000}, "2001:db8:1:2::"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2::1"), Port: 4000}, "2001:db8:1:2::"},
		{&net.UnixAddr{Name: "127.0.0.1:9", Net: "unix"}, "127.0.0.1"},
	} {
		got, ok := addressKey(tt.remote)
		if !ok || got.String() != tt.want {
			t.Errorf("addressKey(%v) = %v, %v; want %s", tt.remote, got, ok, tt.want)
		}
	}
	if _, ok := addressKey(&net.UnixAddr{Name: "/run/x.sock", Net: "unix"}); ok {
		t.Error("a unix socket address has no key")
	}
}

func TestAddressTableConnections(t *testing.T) {
	now := time.Unix(1000, 0)
	tab := newAddressTable(config.AddressLimits{MaxConnections: 2, HandshakesPerSecond: 1, HandshakeBurst: 3}, 100)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	e1, e2 := tab.acquire(a, now), tab.acquire(a, now)
	if e1 == nil || e2 == nil {
		t.Fatal("the first two connections of an address were refused")
	}
	if tab.acquire(a, now) != nil {
		t.Fatal("a third connection was admitted with maxConnections 2")
	}
	if tab.acquire(b, now) == nil {
		t.Fatal("another address was refused")
	}
	tab.release(e1, now)
	if tab.acquire(a, now) == nil {
		t.Fatal("a slot freed by a close was not reusable")
	}
}

func TestAddressTableHandshakeRateAndRemoval(t *testing.T) {
	now := time.Unix(1000, 0)
	tab := newAddressTable(config.AddressLimits{MaxConnections: 10, HandshakesPerSecond: 1, HandshakeBurst: 3}, 100)
	a := netip.MustParseAddr("192.0.2.1")
	e := tab.acquire(a, now)
	for i := range 3 {
		if !tab.allowHandshake(e, now) {
			t.Fatalf("handshake %d within the burst refused", i)
		}
	}
	if tab.allowHandshake(e, now) {
		t.Fatal("a fourth handshake at once was allowed with burst 3")
	}
	if !tab.allowHandshake(e, now.Add(time.Second)) {
		t.Fatal("a handshake one second later (rate 1/s) was refused")
	}
	// No connection left, but the bucket is still refilling: the entry stays, so reconnecting
	// does not reset the rate.
	tab.release(e, now.Add(time.Second))
	if tab.len() != 1 {
		t.Fatalf("%d entries after the close, want 1 (bucket not full)", tab.len())
	}
	if e2 := tab.acquire(a, now.Add(time.Second)); e2 != e || tab.allowHandshake(e2, now.Add(time.Second)) {
		t.Fatal("a reconnect got a fresh bucket")
	} else {
		tab.release(e2, now.Add(time.Second))
	}
	// Once the bucket is full again, the sweep forgets the address.
	tab.sweep(now.Add(3 * time.Second))
	if tab.len() != 1 {
		t.Fatalf("%d entries before the bucket refilled, want 1", tab.len())
	}
	tab.sweep(now.Add(5 * time.Second))
	if tab.len() != 0 {
		t.Fatalf("%d entries after the bucket refilled, want 0", tab.len())
	}
}

func TestAddressTableIsBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	const bound = 50
	tab := newAddressTable(config.AddressLimits{MaxConnections: 1, HandshakesPerSecond: 0.001, HandshakeBurst: 1}, bound)
	// An attacker with many addresses, each leaving an entry with a drained bucket behind.
	for i := range 10 * bound {
		key := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		e := tab.acquire(key, now)
		if e == nil {
			t.Fatalf("address %d refused: entries without connections must make room", i)
		}
		tab.allowHandshake(e, now)
		tab.release(e, now)
		if n := tab.len(); n > bound {
			t.Fatalf("%d entries, above the bound %d", n, bound)
		}
	}
	// Entries holding connections are never dropped: with all of them taken, a new address
	// is refused rather than growing the table.
	var held []*addressEntry
	for i := range bound {
		if e := tab.acquire(netip.AddrFrom4([4]byte{172, 16, 0, byte(i)}), now); e != nil {
			held = append(held, e)
		}
	}
	if len(held) != bound {
		t.Fatalf("held %d connections, want %d", len(held), bound)
	}
	if tab.acquire(netip.MustParseAddr("192.0.2.99"), now) != nil || tab.len() != bound {
		t.Fatalf("the table grew past its bound (%d entries)", tab.len())
	}
}

// The bucket allocated only at an address's second handshake answers exactly as a bucket
// allocated at the first would.
func TestAddressTableLazyBucketMatchesRateLimiter(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, l := range []config.AddressLimits{
		{MaxConnections: 10, HandshakesPerSecond: 2, HandshakeBurst: 3},
		{MaxConnections: 10, HandshakesPerSecond: 0.5, HandshakeBurst: 1},
	} {
		tab := newAddressTable(l, 10)
		e := tab.acquire(netip.MustParseAddr("192.0.2.1"), start)
		ref := rate.NewLimiter(rate.Limit(l.HandshakesPerSecond), l.HandshakeBurst)
		// Handshakes at irregular offsets (ms): bursts, pauses, a long idle gap.
		for i, ms := range []int{0, 3000, 3100, 3200, 3300, 3400, 4000, 4600, 20000, 20001, 20002, 20003, 21500} {
			now := start.Add(time.Duration(ms) * time.Millisecond)
			if got, want := tab.allowHandshake(e, now), ref.AllowN(now, 1); got != want {
				t.Fatalf("%+v: handshake %d at %d ms: allowed %v, a rate.Limiter says %v", l, i, ms, got, want)
			}
		}
	}
}
