package rebalance

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// keyRecheck is how often FileKey looks at its file again.
const keyRecheck = time.Second

// FileKey is a key read from a file (a mounted Secret), read again at most once a second so
// that a rotated Secret applies without a restart. A file that cannot be read or is too
// short is an error: the endpoint then refuses everything (unauthenticated).
type FileKey struct {
	Path string

	mu     sync.Mutex
	key    []byte
	err    error
	readAt time.Time
}

// Key returns the file's key.
func (f *FileKey) Key() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := time.Now(); f.readAt.IsZero() || now.Sub(f.readAt) >= keyRecheck {
		f.readAt = now
		f.key, f.err = readKey(f.Path)
	}
	return f.key, f.err
}

func readKey(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoKey, err)
	}
	if st.Size() > 4096 {
		return nil, fmt.Errorf("%w: %s holds %d bytes, more than a key", ErrNoKey, path, st.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoKey, err)
	}
	if len(b) < MinKeyBytes {
		return nil, fmt.Errorf("%w: %s holds %d bytes, at least %d needed", ErrNoKey, path, len(b), MinKeyBytes)
	}
	return b, nil
}
