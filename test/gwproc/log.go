package gwproc

import (
	"bytes"
	"strings"
	"sync"
)

// Bounds of what a Log keeps.
const (
	maxLines    = 400     // last lines, for Tail
	maxFull     = 1 << 20 // bytes of the output from the start, for String
	maxTapLines = 10000   // lines a Tap keeps (it counts all)
)

// Log keeps a child's output: the last lines, the first MiB, data race reports and the lines
// that taps asked for. It is the child's stdout and stderr.
type Log struct {
	mu      sync.Mutex
	partial []byte
	lines   []string // ring of the last maxLines
	next    int
	full    bytes.Buffer
	races   int
	taps    []*Tap
}

func newLog() *Log { return &Log{} }

func (l *Log) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := maxFull - l.full.Len(); room > 0 {
		l.full.Write(b[:min(room, len(b))])
	}
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(b), nil
}

func (l *Log) line(s string) {
	if len(l.lines) < maxLines {
		l.lines = append(l.lines, s)
	} else {
		l.lines[l.next] = s
		l.next = (l.next + 1) % maxLines
	}
	if strings.Contains(s, "WARNING: DATA RACE") {
		l.races++
	}
	for _, t := range l.taps {
		if t.match(s) {
			t.n++
			if len(t.lines) < maxTapLines {
				t.lines = append(t.lines, s)
			}
		}
	}
}

// Races is the number of data race reports so far.
func (l *Log) Races() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.races
}

// Tail is the last n lines.
func (l *Log) Tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ordered := append(append([]string(nil), l.lines[l.next:]...), l.lines[:l.next]...)
	if len(ordered) > n {
		ordered = ordered[len(ordered)-n:]
	}
	return strings.Join(ordered, "\n")
}

// String is the output from the start (its first MiB).
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.full.String()
}

// Tap collects the lines written from now on for which match is true.
type Tap struct {
	match func(string) bool
	l     *Log
	n     int      // guarded by l.mu
	lines []string // guarded by l.mu; the first maxTapLines
}

// Tap starts collecting the lines for which match is true.
func (l *Log) Tap(match func(line string) bool) *Tap {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := &Tap{match: match, l: l}
	l.taps = append(l.taps, t)
	return t
}

// TapContaining collects the lines that contain s.
func (l *Log) TapContaining(s string) *Tap {
	return l.Tap(func(line string) bool { return strings.Contains(line, s) })
}

// Count is the number of matching lines so far.
func (t *Tap) Count() int {
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	return t.n
}

// Lines are the matching lines so far (the first 10000).
func (t *Tap) Lines() []string {
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	return append([]string(nil), t.lines...)
}
