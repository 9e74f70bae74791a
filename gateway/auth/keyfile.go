package auth

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// keyCheckInterval bounds how often a key file is stat'ed: rotation is picked up within about
// a second while a handshake burst costs one syscall per second, not one per handshake.
const keyCheckInterval = time.Second

// keyFile holds a key parsed from a file and re-reads the file when it changes. Kubernetes
// rotates a mounted Secret by swapping a symlink to a new directory, so a change shows up as
// a different file behind the path, a new modification time or a new size.
type keyFile[K any] struct {
	path  string
	parse func([]byte) (K, error)
	now   func() time.Time

	mu sync.Mutex
	// guarded by mu
	key     K
	info    os.FileInfo // stat of the file key was read from
	checked time.Time   // last stat, successful or not
	lastErr string      // last reload failure logged, to log each distinct failure once
}

// newKeyFile reads and parses path; failure here is a configuration error.
func newKeyFile[K any](path string, parse func([]byte) (K, error), now func() time.Time) (*keyFile[K], error) {
	f := &keyFile[K]{path: path, parse: parse, now: now}
	if err := f.reload(); err != nil {
		return nil, err
	}
	f.checked = now()
	return f, nil
}

// get returns the current key, re-reading the file first if it is due for a check and has
// changed. A file that fails to re-read (mid-rotation, emptied, garbage) keeps the previous
// key in service: a bad rotation must not lock every client out. The failure is logged and
// retried at the next check.
func (f *keyFile[K]) get() K {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if now.Sub(f.checked) < keyCheckInterval {
		return f.key
	}
	f.checked = now
	if err := f.reload(); err != nil {
		if msg := err.Error(); msg != f.lastErr {
			f.lastErr = msg
			slog.Warn("auth: key file reload failed, keeping the previous key", "path", f.path, "err", err)
		}
	} else {
		f.lastErr = ""
	}
	return f.key
}

// reload re-reads the file if it differs from the one the key came from. The stat happens
// before the read, so a change racing with the read is seen at the next check.
func (f *keyFile[K]) reload() error {
	info, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("while checking key file: %w", err)
	}
	if f.info != nil && os.SameFile(f.info, info) && f.info.ModTime().Equal(info.ModTime()) &&
		f.info.Size() == info.Size() {
		return nil
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("while reading key file: %w", err)
	}
	key, err := f.parse(data)
	if err != nil {
		return fmt.Errorf("while parsing key file %s: %w", f.path, err)
	}
	f.key, f.info = key, info
	return nil
}
