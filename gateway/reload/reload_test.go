package reload

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// secretDir lays files out as the kubelet does for a Secret volume: dir/name is a symlink
// to ..data/name, ..data a symlink to a timestamped directory; rotate swaps ..data.
type secretDir struct {
	t   *testing.T
	dir string
	gen int
}

func (s *secretDir) rotate(files map[string]string) {
	s.t.Helper()
	s.gen++
	ts := filepath.Join(s.dir, "..ts"+string(rune('a'+s.gen)))
	if err := os.Mkdir(ts, 0o755); err != nil {
		s.t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(ts, name), []byte(content), 0o600); err != nil {
			s.t.Fatal(err)
		}
		link := filepath.Join(s.dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				s.t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		s.t.Fatal(err)
	}
}

// pair parses "a" and "b" and refuses pairs whose contents differ in length, like a
// certificate whose key does not match.
func pair(data [][]byte) (string, error) {
	if len(data[0]) != len(data[1]) || len(data[0]) == 0 {
		return "", errors.New("mismatched pair")
	}
	return string(bytes.Join(data, []byte("+"))), nil
}

func TestFilesRotateKubernetesStyle(t *testing.T) {
	s := &secretDir{t: t, dir: t.TempDir()}
	s.rotate(map[string]string{"a": "a1", "b": "b1"})
	c := &clock{t: time.Unix(1000, 0)}
	type outcome struct {
		v   string
		err error
	}
	var reloads []outcome
	f, err := New([]string{filepath.Join(s.dir, "a"), filepath.Join(s.dir, "b")}, pair,
		Options[string]{Now: c.now, OnReload: func(v string, err error) { reloads = append(reloads, outcome{v, err}) }})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Get(); got != "a1+b1" {
		t.Fatalf("first value %q", got)
	}

	s.rotate(map[string]string{"a": "a2", "b": "b2"})
	if got := f.Get(); got != "a1+b1" {
		t.Fatalf("within the interval: %q, want the cached value", got)
	}
	c.advance(DefaultInterval)
	if got := f.Get(); got != "a2+b2" {
		t.Fatalf("after rotation: %q", got)
	}

	// A bad pair keeps the previous value, and is read once, not at every check.
	s.rotate(map[string]string{"a": "a3", "b": "bad3"})
	for range 3 {
		c.advance(DefaultInterval)
		if got := f.Get(); got != "a2+b2" {
			t.Fatalf("after a bad rotation: %q, want the previous value", got)
		}
	}
	// A good pair after it is picked up.
	s.rotate(map[string]string{"a": "a4", "b": "b4"})
	c.advance(DefaultInterval)
	if got := f.Get(); got != "a4+b4" {
		t.Fatalf("after recovery: %q", got)
	}
	// Nothing changed: no reload.
	c.advance(DefaultInterval)
	f.Get()

	if len(reloads) != 3 || reloads[0].err != nil || reloads[1].err == nil || reloads[1].v != "a2+b2" ||
		reloads[2].err != nil || reloads[2].v != "a4+b4" {
		t.Errorf("reloads = %+v, want ok, one refusal keeping a2+b2, ok", reloads)
	}
}

func TestFilesMissingAtStart(t *testing.T) {
	if _, err := New([]string{filepath.Join(t.TempDir(), "absent")}, func(d [][]byte) ([]byte, error) { return d[0], nil },
		Options[[]byte]{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not exist", err)
	}
}

// A file that disappears keeps the value; it is checked again at every interval and picked
// up when it comes back.
func TestFilesVanishAndReturn(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	if err := os.WriteFile(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Unix(1000, 0)}
	f, err := New([]string{path}, func(d [][]byte) (string, error) { return string(d[0]), nil }, Options[string]{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	c.advance(DefaultInterval)
	if got := f.Get(); got != "one" {
		t.Fatalf("after removal: %q", got)
	}
	if err := os.WriteFile(path, []byte("two!"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.advance(DefaultInterval)
	if got := f.Get(); got != "two!" {
		t.Fatalf("after return: %q", got)
	}
}
