package events

import (
	"log/slog"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
)

// lossLogInterval is the least time between two "session events lost" lines: with the events
// topic missing or Kafka down, nearly every event fails in a batch of its own, and a line per
// batch would flood the log. tcpgw_session_events_dropped_total counts every event anyway.
const lossLogInterval = 10 * time.Second

// lossLog says the events a failed write lost: the first failure at once, then at most one
// line per lossLogInterval with the events lost since the previous line. Owned by the
// publisher's writer goroutine (run); not safe for concurrent use.
type lossLog struct {
	log  *slog.Logger
	now  func() time.Time
	lost int       // events lost since the last line
	last time.Time // when the last line was written; zero before the first
	err  error     // the latest failure not yet logged
}

// failed records n events lost to err and logs them unless a line was written less than
// lossLogInterval ago.
func (l *lossLog) failed(n int, err error) {
	l.lost += n
	l.err = err
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < lossLogInterval {
		return
	}
	l.last = now
	l.flush()
}

// flush logs the events lost since the last line, if any: at exit, so none goes unsaid.
func (l *lossLog) flush() {
	if l.lost == 0 {
		return
	}
	l.log.Warn("session events lost", "count", l.lost, "reason", kafkasec.Reason(l.err), "err", l.err)
	l.lost, l.err = 0, nil
}
