package conformance

import (
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// Link is a TCP proxy between clients and one gateway that the test can break: Cut closes
// every connection through it (the client sees a loss without GOAWAY, as when its network
// drops), and while it is Down it closes each new connection at once (the client's reconnects
// fail). Everything else is passed through unchanged.
type Link struct {
	ln     net.Listener
	target string

	mu      sync.Mutex // guards down, conns, accepts
	down    bool
	conns   map[net.Conn]struct{}
	accepts []time.Time // when each client connection arrived
}

// StartLink listens on a loopback port and forwards to target until the test ends.
func StartLink(t testing.TB, target string) *Link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Link{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go l.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		l.Cut()
	})
	return l
}

// Addr is where clients connect.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// SetDown makes new connections fail (true) or pass (false).
func (l *Link) SetDown(down bool) {
	l.mu.Lock()
	l.down = down
	l.mu.Unlock()
}

// Accepts are the arrival times of the connections from index from on: every connect
// attempt of the clients behind the link, failed or not.
func (l *Link) Accepts(from int) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.accepts[min(from, len(l.accepts)):])
}

// Cut closes every connection through the link.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		_ = c.Close()
	}
	clear(l.conns)
}

func (l *Link) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.serve(c)
	}
}

func (l *Link) serve(c net.Conn) {
	l.mu.Lock()
	down := l.down
	l.accepts = append(l.accepts, time.Now())
	l.mu.Unlock()
	if down {
		_ = c.Close()
		return
	}
	g, err := net.Dial("tcp", l.target)
	if err != nil {
		_ = c.Close()
		return
	}
	if !l.track(c, g) {
		return
	}
	go func() {
		_, _ = io.Copy(g, c)
		_ = g.Close()
		_ = c.Close()
	}()
	_, _ = io.Copy(c, g)
	_ = c.Close()
	_ = g.Close()
}

// track registers both ends unless the link went down meanwhile (then it closes them).
func (l *Link) track(c, g net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		_ = c.Close()
		_ = g.Close()
		return false
	}
	l.conns[c] = struct{}{}
	l.conns[g] = struct{}{}
	return true
}
