package auth

import (
	"log/slog"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/reload"
)

// keyCheckInterval bounds how often a key file is stat'ed: rotation is picked up within about
// a second while a handshake burst costs one syscall per second, not one per handshake.
const keyCheckInterval = reload.DefaultInterval

// keyFile holds a key parsed from a file and re-reads the file when it changes (see package
// reload: Kubernetes rotates a mounted Secret by swapping a symlink).
type keyFile[K any] struct {
	files *reload.Files[K]
}

// newKeyFile reads and parses path; failure here is a configuration error.
func newKeyFile[K any](path string, parse func([]byte) (K, error), now func() time.Time) (*keyFile[K], error) {
	files, err := reload.New([]string{path}, func(data [][]byte) (K, error) { return parse(data[0]) },
		reload.Options[K]{Now: now, Interval: keyCheckInterval, OnReload: func(_ K, err error) {
			if err != nil {
				slog.Warn("auth: key file reload failed, keeping the previous key", "path", path, "err", err)
			}
		}})
	if err != nil {
		return nil, err
	}
	return &keyFile[K]{files: files}, nil
}

// get returns the current key, re-reading the file first if it is due for a check and has
// changed. A file that fails to re-read (mid-rotation, emptied, garbage) keeps the previous
// key in service: a bad rotation must not lock every client out. The failure is logged once
// per change of the file; the next change is read again.
func (f *keyFile[K]) get() K { return f.files.Get() }
