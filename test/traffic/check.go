package traffic

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Missing counts the accepted records ac has not received (only those accepted before
// `before`, unless it is zero); examples describe a few, with their acceptance time relative
// to t0.
func (ac *App) Missing(p *Producer, t0 time.Time, want int, before time.Time) (int, []string) {
	bcast, own, grp := p.acceptedFor(ac)
	ac.mu.Lock()
	defer ac.mu.Unlock()
	n := 0
	var examples []string
	check := func(kind string, acc []accepted, got []uint8) {
		for _, a := range acc {
			if (a.seq < len(got) && got[a.seq] > 0) || (!before.IsZero() && !a.at.Before(before)) {
				continue
			}
			n++
			if len(examples) < want {
				examples = append(examples, fmt.Sprintf("%s #%d accepted at t0%+.3fs", kind, a.seq, a.at.Sub(t0).Seconds()))
			}
		}
	}
	check("broadcast", bcast, ac.bcast)
	check("user record", own, ac.own)
	check("group record", grp, ac.grp)
	return n, examples
}

// Duplicates counts records delivered to the app more than once.
func (ac *App) Duplicates() int {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	n := 0
	for _, counts := range [][]uint8{ac.bcast, ac.own, ac.grp} {
		for _, c := range counts {
			if c > 1 {
				n += int(c) - 1
			}
		}
	}
	return n
}

// Deliveries counts the records delivered to the app.
func (ac *App) Deliveries() int {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	n := 0
	for _, counts := range [][]uint8{ac.bcast, ac.own, ac.grp} {
		for _, c := range counts {
			n += int(c)
		}
	}
	return n
}

// WaitComplete waits until every client has every record Kafka accepted (the Producer must
// be halted) and returns when that was seen.
func WaitComplete(f *Fleet, p *Producer, limit time.Duration) (time.Time, bool) {
	ok := f.WaitUntil(limit, func() bool {
		for _, ac := range f.Clients {
			if n, _ := ac.Missing(p, time.Time{}, 0, time.Time{}); n > 0 {
				return false
			}
		}
		return true
	})
	return time.Now(), ok
}

// CheckRecords asserts 0 lost, 0 duplicates, order per user and group, no misdelivery.
func CheckRecords(t testing.TB, f *Fleet, p *Producer, t0 time.Time) (deliveries int) {
	t.Helper()
	var lost, dups, problems, lostClients int
	var report []string
	for _, ac := range f.Clients {
		n, examples := ac.Missing(p, t0, 3, time.Time{})
		lost += n
		if n > 0 {
			lostClients++
			if len(report) < 10 {
				conns, discs := ac.Events()
				report = append(report, fmt.Sprintf("client %d (%s) misses %d: %s; History: %s",
					ac.Index, ac.User, n, strings.Join(examples, ", "), History(conns, discs, t0)))
			}
		}
		dups += ac.Duplicates()
		deliveries += ac.Deliveries()
		ac.mu.Lock()
		problems += ac.problemN
		if ac.problemN > 0 && len(report) < 20 {
			report = append(report, fmt.Sprintf("client %d: %s", ac.Index, strings.Join(ac.problems, "; ")))
		}
		ac.mu.Unlock()
	}
	if lost > 0 {
		t.Errorf("%d accepted records never reached the app (%d clients)", lost, lostClients)
	}
	if dups > 0 {
		t.Errorf("%d records were delivered to the app more than once", dups)
	}
	if problems > 0 {
		t.Errorf("%d misdelivered or out-of-order pushes", problems)
	}
	if len(report) > 0 {
		t.Logf("details:\n  %s", strings.Join(report, "\n  "))
	}
	return deliveries
}

// History renders a client's connections relative to t0.
func History(conns []ConnectEvent, discs []DisconnectEvent, t0 time.Time) string {
	var parts []string
	for _, c := range conns {
		s := fmt.Sprintf("connect %s at t0%+.3fs", c.Server, c.At.Sub(t0).Seconds())
		if c.Resumed {
			s += " resume=" + c.Status.String()
		}
		parts = append(parts, s)
	}
	for _, d := range discs {
		parts = append(parts, fmt.Sprintf("disconnect at t0%+.3fs (%s)", d.At.Sub(t0).Seconds(), d.Err))
	}
	return strings.Join(parts, "; ")
}

// Moves describes how the clients of a drained or killed gateway came back.
type Moves struct {
	Moved      int
	Reconnects []time.Duration // per moved client: its first handshake elsewhere after t0, sorted
	NotBack    []string
	ResumeBad  []string // handshakes after t0 that did not resume COMPLETE
	// MaxPerSecond is the largest number of those handshakes in any one-second interval
	// (a sliding window, so no bucket alignment can hide a burst).
	MaxPerSecond int
}

// CheckMoves looks at the clients that were on victim at t0.
func CheckMoves(moved []*App, victim string, t0 time.Time) Moves {
	m := Moves{Moved: len(moved)}
	var times []time.Time
	for _, ac := range moved {
		conns, discs := ac.Events()
		back := false
		for _, c := range conns {
			if c.At.Before(t0) {
				continue
			}
			if !c.Resumed || c.Status != pb.ResumeResult_STATUS_COMPLETE {
				m.ResumeBad = append(m.ResumeBad, fmt.Sprintf("client %d on %s: resumed=%v status=%s notRecovered=%v",
					ac.Index, c.Server, c.Resumed, c.Status, c.NotRecovered))
			}
			if !back && c.Server != victim {
				back = true
				m.Reconnects = append(m.Reconnects, c.At.Sub(t0))
				times = append(times, c.At)
			}
		}
		if !back {
			m.NotBack = append(m.NotBack, fmt.Sprintf("client %d: %s", ac.Index, History(conns, discs, t0)))
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i, j := 0, 0; i < len(times); i++ {
		for times[i].Sub(times[j]) >= time.Second {
			j++
		}
		m.MaxPerSecond = max(m.MaxPerSecond, i-j+1)
	}
	slices.Sort(m.Reconnects)
	return m
}

func (m Moves) Last() time.Duration {
	if len(m.Reconnects) == 0 {
		return 0
	}
	return m.Reconnects[len(m.Reconnects)-1]
}

func (m Moves) Percentile(q float64) time.Duration {
	if len(m.Reconnects) == 0 {
		return 0
	}
	return m.Reconnects[min(int(q*float64(len(m.Reconnects))), len(m.Reconnects)-1)]
}

// CheckUndisturbed asserts that clients of the other gateways kept their one connection.
func CheckUndisturbed(t testing.TB, f *Fleet, moved []*App, t0 time.Time) {
	t.Helper()
	var bad []string
	for _, ac := range f.Clients {
		if slices.Contains(moved, ac) {
			continue
		}
		conns, discs := ac.Events()
		if len(conns) != 1 || len(discs) != 0 {
			bad = append(bad, fmt.Sprintf("client %d: %s", ac.Index, History(conns, discs, t0)))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d clients of the other gateways were disturbed, e.g. %s", len(bad), strings.Join(bad[:min(len(bad), 5)], "\n  "))
	}
}
