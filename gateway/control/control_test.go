package control

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// socketPath is a path in a fresh directory (short: t.TempDir's names can be long).
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "run", "control.sock")
}

func TestListenModeAndCleanup(t *testing.T) {
	path := socketPath(t)
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != SocketMode {
		t.Errorf("socket mode %s, want a socket with %s", fi.Mode(), SocketMode)
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("created directory: %v %v, want mode 0700", di.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the socket (the private bind directory removed)", len(entries))
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
}

// A killed gateway leaves its socket behind; the next one replaces it.
func TestListenReplacesStaleSocket(t *testing.T) {
	path := socketPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	_ = stale.Close() // the file stays, nobody listens: what SIGKILL leaves
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer ln.Close()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("new socket does not answer: %v", err)
	}
	_ = conn.Close()
}

func TestListenRefusesLiveSocketAndOtherFiles(t *testing.T) {
	path := socketPath(t)
	first, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "another gateway serves it") {
		t.Errorf("second Listen on a live socket: %v", err)
	}

	file := socketPath(t)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(file); err == nil || !strings.Contains(err.Error(), "is in the way") {
		t.Errorf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "not a socket" {
		t.Error("the regular file was replaced")
	}
}

// Close leaves alone a socket another process put at the path since.
func TestCloseKeepsReplacement(t *testing.T) {
	path := socketPath(t)
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	other, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_ = ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the other socket was removed: %v", err)
	}
}

// fakeDrainer's drain runs once and finishes when release is closed.
type fakeDrainer struct {
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func newFakeDrainer() *fakeDrainer {
	return &fakeDrainer{started: make(chan struct{}), release: make(chan struct{})}
}

func (f *fakeDrainer) UserSessions(user string) []Session {
	if user != "alice" {
		return nil
	}
	return []Session{{SessionID: "phone", UserID: "alice", Remote: "192.0.2.1:5000", Connected: time.Unix(1700000000, 0).UTC()}}
}

func (f *fakeDrainer) Drain(ctx context.Context) error {
	f.once.Do(func() { close(f.started) })
	select {
	case <-f.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Rebalance refuses what the gateway would refuse, and otherwise reports a finished run.
func (f *fakeDrainer) Rebalance(ctx context.Context, count, rate int, wait bool) (RebalanceStatus, error) {
	switch {
	case count == 7:
		return RebalanceStatus{}, &RebalanceError{Reason: RebalanceRunning, Message: "another rebalance is running"}
	case count < 1 || count > 10:
		return RebalanceStatus{}, &RebalanceError{Reason: RebalanceBadCount, Message: "count outside [1, 10]"}
	}
	return RebalanceStatus{Count: count, Rate: rate, Sessions: 10, Sent: count, Done: wait}, nil
}

func serve(t *testing.T, d Gateway) string {
	t.Helper()
	path := socketPath(t)
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(d)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return path
}

func TestDrainStartsAndWaits(t *testing.T) {
	d := newFakeDrainer()
	path := serve(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Without -wait: answered at once, the drain runs on.
	if got, err := Drain(ctx, path, false); err != nil || got != "draining" {
		t.Fatalf("Drain(wait=false) = %q, %v", got, err)
	}
	select {
	case <-d.started:
	case <-ctx.Done():
		t.Fatal("drain not started")
	}
	// With -wait: answered only once the drain finished.
	answered := make(chan string, 1)
	go func() {
		got, err := Drain(ctx, path, true)
		if err != nil {
			got = err.Error()
		}
		answered <- got
	}()
	select {
	case got := <-answered:
		t.Fatalf("Drain(wait=true) answered %q before the drain finished", got)
	case <-time.After(200 * time.Millisecond): // a wrong early answer would come at once
	}
	close(d.release)
	select {
	case got := <-answered:
		if got != "drained" {
			t.Errorf("Drain(wait=true) = %q", got)
		}
	case <-ctx.Done():
		t.Fatal("Drain(wait=true) did not return after the drain finished")
	}
}

func TestDrainOnlyByPost(t *testing.T) {
	d := newFakeDrainer()
	path := serve(t, d)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	resp, err := hc.Get("http://control" + DrainPath)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET %s = %d, want 405", DrainPath, resp.StatusCode)
	}
	select {
	case <-d.started:
		t.Error("GET started the drain")
	default:
	}
}

func TestDrainWithoutGateway(t *testing.T) {
	path := socketPath(t)
	_, err := Drain(context.Background(), path, true)
	if err == nil || !strings.Contains(err.Error(), "no gateway answers on the control socket") || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Drain with no socket: %v", err)
	}
}

func TestSessionsListsOneUser(t *testing.T) {
	path := serve(t, newFakeDrainer())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := Sessions(ctx, path, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].SessionID != "phone" || got[0].Remote != "192.0.2.1:5000" {
		t.Fatalf("alice's sessions: %+v", got)
	}
	if got, err := Sessions(ctx, path, "bob"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("bob's sessions: %+v, %v; want an empty list", got, err)
	}
	// No user, or one longer than any id: refused, not a listing of everyone.
	for _, user := range []string{"", strings.Repeat("u", maxSessionsUser+1)} {
		if _, err := Sessions(ctx, path, user); err == nil || !strings.Contains(err.Error(), "400") {
			t.Errorf("user of %d bytes: %v, want 400", len(user), err)
		}
	}
}

// The control socket carries the rebalance's answer and its typed refusals to the caller.
func TestRebalanceAnswersAndRefusals(t *testing.T) {
	path := serve(t, newFakeDrainer())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := Rebalance(ctx, path, 3, 5, true)
	if err != nil || st != (RebalanceStatus{Count: 3, Rate: 5, Sessions: 10, Sent: 3, Done: true}) {
		t.Fatalf("Rebalance(3, 5, wait) = %+v, %v", st, err)
	}
	for _, tc := range []struct {
		count  int
		reason string
	}{{0, RebalanceBadCount}, {11, RebalanceBadCount}, {7, RebalanceRunning}} {
		var re *RebalanceError
		if _, err := Rebalance(ctx, path, tc.count, 5, false); !errors.As(err, &re) || re.Reason != tc.reason {
			t.Errorf("Rebalance(count %d) = %v, want a RebalanceError %s", tc.count, err, tc.reason)
		}
	}
	// Not numbers: refused by the socket before the gateway sees them; only POST starts one.
	hc := socketClient(path)
	for _, q := range []struct{ query, reason string }{{"count=x&rate=1", RebalanceBadCount}, {"count=1&rate=", RebalanceBadRate}} {
		resp, err := hc.Post("http://control"+RebalancePath+"?"+q.query, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), q.reason) {
			t.Errorf("%s: %s %s, want 400 %s", q.query, resp.Status, body, q.reason)
		}
	}
	resp, err := hc.Get("http://control" + RebalancePath + "?count=1&rate=1")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET %s = %d, want 405", RebalancePath, resp.StatusCode)
	}
}
