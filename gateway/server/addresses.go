package server

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// ipv6PrefixBits groups IPv6 clients by their /64: one subscriber usually holds a whole /64,
// so per-address limits on full IPv6 addresses would cost an attacker nothing.
const ipv6PrefixBits = 64

// addressSweepInterval paces the removal of entries whose address has no connection left and
// whose handshake bucket has filled up again.
const addressSweepInterval = 10 * time.Second

// Which per-address limit refused a connection (tcpgw_address_limited_total{limit}).
const (
	limitConnections   = "connections"
	limitHandshakeRate = "handshake_rate"
)

// addressKey is the unit of per-address limits: the IPv4 address, or the IPv6 /64 prefix.
// ok is false when the remote address is not an IP (never for TCP).
func addressKey(remote net.Addr) (key netip.Addr, ok bool) {
	var ap netip.AddrPort
	if tcp, isTCP := remote.(*net.TCPAddr); isTCP {
		ap = tcp.AddrPort()
	} else if remote != nil {
		parsed, err := netip.ParseAddrPort(remote.String())
		if err != nil {
			return netip.Addr{}, false
		}
		ap = parsed
	}
	a := ap.Addr().Unmap()
	if !a.IsValid() {
		return netip.Addr{}, false
	}
	if a.Is6() {
		p, err := a.Prefix(ipv6PrefixBits)
		if err != nil {
			return netip.Addr{}, false
		}
		a = p.Addr()
	}
	return a, true
}

// addressEntry is what the gateway knows about one client address. Most addresses hold one
// connection that handshakes once, so the token bucket is allocated only for an address's
// second handshake within one refill of a token: until then the time of the first is enough
// to know the bucket's state. 48 bytes, plus a bucket (~80) for busier addresses.
type addressEntry struct {
	key netip.Addr
	// Guarded by addressTable.mu.
	conns      int
	first      int64         // Unix ns of the one handshake taken from a bucket not yet allocated; 0: none
	handshakes *rate.Limiter // nil until needed (see above)
}

// addressTable holds per-address state: open connections and a handshake token bucket. It is
// bounded by maxEntries; an entry is removed once its address has no connection and its
// bucket is full again (it then says nothing a fresh entry would not).
type addressTable struct {
	maxConns   int
	rate       rate.Limit
	burst      int
	maxEntries int

	mu      sync.Mutex
	entries map[netip.Addr]*addressEntry
}

// newAddressTable bounds the table at maxEntries. Every entry with a connection stands for
// at least one open connection, so maxConnections + maxPendingHandshakes entries are enough
// for all of them: beyond, only entries kept for their bucket are dropped.
func newAddressTable(l config.AddressLimits, maxEntries int) *addressTable {
	return &addressTable{
		maxConns:   l.MaxConnections,
		rate:       rate.Limit(l.HandshakesPerSecond),
		burst:      l.HandshakeBurst,
		maxEntries: maxEntries,
		entries:    map[netip.Addr]*addressEntry{},
	}
}

// acquire counts a new connection from key. It returns the entry to release on close, or nil
// when the address already holds its maximum of connections.
func (t *addressTable) acquire(key netip.Addr, now time.Time) *addressEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil {
		if len(t.entries) >= t.maxEntries {
			t.evictLocked(now)
		}
		if len(t.entries) >= t.maxEntries {
			return nil // every entry holds a connection: cannot happen within the bound
		}
		e = &addressEntry{key: key}
		t.entries[key] = e
	}
	if e.conns >= t.maxConns {
		return nil
	}
	e.conns++
	return e
}

// release gives back a connection of e.
func (t *addressTable) release(e *addressEntry, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.conns--
	if t.idle(e, now) && t.entries[e.key] == e {
		delete(t.entries, e.key)
	}
}

// allowHandshake takes a token from the address's handshake bucket.
func (t *addressTable) allowHandshake(e *addressEntry, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.handshakes == nil {
		if e.first == 0 || t.refilled(e.first, now) {
			// The bucket is full: taking a token is all there is to remember.
			e.first = now.UnixNano()
			return true
		}
		// A second handshake while the first token refills: replay the first into a real bucket.
		e.handshakes = rate.NewLimiter(t.rate, t.burst)
		e.handshakes.AllowN(time.Unix(0, e.first), 1)
	}
	return e.handshakes.AllowN(now, 1)
}

// refilled reports whether one token taken at first (Unix ns) is back by now.
func (t *addressTable) refilled(first int64, now time.Time) bool {
	return float64(now.UnixNano()-first) >= float64(time.Second)/float64(t.rate)
}

// idle: no connection and a full bucket, so forgetting the entry changes nothing.
func (t *addressTable) idle(e *addressEntry, now time.Time) bool {
	if e.conns != 0 {
		return false
	}
	if e.handshakes == nil {
		return e.first == 0 || t.refilled(e.first, now)
	}
	return e.handshakes.TokensAt(now) >= float64(t.burst)
}

// sweep removes idle entries.
func (t *addressTable) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(now)
}

func (t *addressTable) sweepLocked(now time.Time) {
	for k, e := range t.entries {
		if t.idle(e, now) {
			delete(t.entries, k)
		}
	}
}

// evictLocked makes room in a full table: idle entries first, then entries without a
// connection whose bucket is still refilling (their address gets a fresh bucket: a table
// this full means many addresses at once, where the pending and global bounds still hold).
func (t *addressTable) evictLocked(now time.Time) {
	t.sweepLocked(now)
	if len(t.entries) < t.maxEntries {
		return
	}
	for k, e := range t.entries {
		if e.conns == 0 {
			delete(t.entries, k)
		}
	}
}

// len is the number of tracked addresses.
func (t *addressTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}
