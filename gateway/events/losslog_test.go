package events

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// records keeps the log records written through it.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// lines are the records as "message count=N reason=R".
func (r *records) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.recs {
		line := rec.Message
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "count" || a.Key == "reason" {
				line += fmt.Sprintf(" %s=%v", a.Key, a.Value)
			}
			return true
		})
		out = append(out, line)
	}
	return out
}

func TestLossLogOneLinePerInterval(t *testing.T) {
	var recs records
	clock := time.Unix(1000, 0)
	l := lossLog{log: slog.New(&recs), now: func() time.Time { return clock }}
	missing := kafka.WriteErrors{kafka.UnknownTopicOrPartition}

	for range 100 { // one interval: the first failure is said, the other 99 wait
		l.failed(1, missing)
		clock = clock.Add(lossLogInterval / 200)
	}
	clock = clock.Add(lossLogInterval / 2) // now a whole interval after the first line
	l.failed(3, missing)                   // says the 99 waiting and these 3
	l.failed(5, missing)                   // waits
	l.flush()                              // at exit: says the 5

	want := []string{
		"session events lost count=1 reason=topics_missing",
		"session events lost count=102 reason=topics_missing",
		"session events lost count=5 reason=topics_missing",
	}
	got := recs.lines()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("log lines\n%q\nwant\n%q", got, want)
	}
	l.flush() // nothing lost since: no line
	if n := len(recs.lines()); n != len(want) {
		t.Fatalf("flush with nothing lost wrote a line: %d lines", n)
	}
}
