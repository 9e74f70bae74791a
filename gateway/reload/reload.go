// Package reload holds values parsed from files mounted from Kubernetes Secrets (JWT keys, the
// clients listener's certificate and key) and re-parses them when the files change, so a
// rotation applies without a restart. The kubelet updates a Secret volume by swapping a
// ..data symlink to a new directory, so a change shows up as a different file behind a path,
// a new modification time or a new size; the files are stat'ed, at a bounded rate, when the
// value is asked for.
package reload

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// DefaultInterval bounds how often the files are stat'ed: rotation is picked up within about
// a second while a burst of users (handshakes) costs one stat per file per second.
const DefaultInterval = time.Second

// Options tune Files.
type Options[V any] struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Interval between checks; 0 means DefaultInterval.
	Interval time.Duration
	// OnReload, when set, is told the outcome of every reload after the first load: the new
	// value, or why the changed files were refused (the previous value stays in service).
	// Files that changed are read once per change, so it is called once per rotation, not
	// once per check. It runs with the holder locked: keep it short.
	OnReload func(v V, err error)
}

// Files holds a value parsed from a set of files.
type Files[V any] struct {
	paths []string
	parse func(data [][]byte) (V, error)
	opts  Options[V]

	mu sync.Mutex
	// guarded by mu
	value   V
	loaded  []os.FileInfo // stat of the files value was read from
	refused []os.FileInfo // stat of the files last refused, not read again until they change
	checked time.Time     // last check, successful or not
}

// New reads and parses paths (parse gets their contents in the same order); failure here is
// a configuration error.
func New[V any](paths []string, parse func(data [][]byte) (V, error), opts Options[V]) (*Files[V], error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	f := &Files[V]{paths: paths, parse: parse, opts: opts}
	infos, err := f.stat()
	if err != nil {
		return nil, err
	}
	if err := f.load(infos); err != nil {
		return nil, err
	}
	f.checked = opts.Now()
	return f, nil
}

// Get returns the current value, re-reading the files first if a check is due and they have
// changed. Files that fail to load (mid-rotation, emptied, garbage, a certificate without its
// key) keep the previous value in service: a bad rotation must not lock every client out.
func (f *Files[V]) Get() V {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.opts.Now()
	if now.Sub(f.checked) < f.opts.Interval {
		return f.value
	}
	f.checked = now
	infos, err := f.stat()
	if err == nil && (same(infos, f.loaded) || same(infos, f.refused)) {
		return f.value
	}
	if err == nil {
		err = f.load(infos)
	}
	if err != nil {
		f.refused = infos // nil when stat failed: checked again next time
	} else {
		f.refused = nil
	}
	if f.opts.OnReload != nil {
		f.opts.OnReload(f.value, err)
	}
	return f.value
}

// stat happens before the read, so a change racing with the read is seen at the next check.
func (f *Files[V]) stat() ([]os.FileInfo, error) {
	infos := make([]os.FileInfo, len(f.paths))
	for i, p := range f.paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("while checking %s: %w", p, err)
		}
		infos[i] = info
	}
	return infos, nil
}

func (f *Files[V]) load(infos []os.FileInfo) error {
	data := make([][]byte, len(f.paths))
	for i, p := range f.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("while reading %s: %w", p, err)
		}
		data[i] = b
	}
	v, err := f.parse(data)
	if err != nil {
		return fmt.Errorf("while parsing %v: %w", f.paths, err)
	}
	f.value, f.loaded = v, infos
	return nil
}

// same reports whether every file is the one stat'ed before, unchanged.
func same(a, b []os.FileInfo) bool {
	if len(a) != len(b) || a == nil {
		return false
	}
	for i := range a {
		if !os.SameFile(a[i], b[i]) || !a[i].ModTime().Equal(b[i].ModTime()) || a[i].Size() != b[i].Size() {
			return false
		}
	}
	return true
}
