package drain

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/protocol/pb"
)

// missing counts the accepted records ac has not received (only those accepted before
// `before`, unless it is zero); examples describe a few, with their acceptance time relative
// to t0.
func (ac *appClient) missing(p *producer, t0 time.Time, want int, before time.Time) (int, []string) {
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

// duplicates counts records delivered to the app more than once.
func (ac *appClient) duplicates() int {
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

// deliveries counts the records delivered to the app.
func (ac *appClient) deliveries() int {
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

// waitComplete waits until every client has every record Kafka accepted (the producer must
// be halted) and returns when that was seen.
func waitComplete(f *fleet, p *producer, limit time.Duration) (time.Time, bool) {
	ok := f.waitUntil(limit, func() bool {
		for _, ac := range f.clients {
			if n, _ := ac.missing(p, time.Time{}, 0, time.Time{}); n > 0 {
				return false
			}
		}
		return true
	})
	return time.Now(), ok
}

// checkRecords asserts 0 lost, 0 duplicates, order per user and group, no misdelivery.
func checkRecords(t *testing.T, f *fleet, p *producer, t0 time.Time) (deliveries int) {
	t.Helper()
	var lost, dups, problems, lostClients int
	var report []string
	for _, ac := range f.clients {
		n, examples := ac.missing(p, t0, 3, time.Time{})
		lost += n
		if n > 0 {
			lostClients++
			if len(report) < 10 {
				conns, discs := ac.events()
				report = append(report, fmt.Sprintf("client %d (%s) misses %d: %s; history: %s",
					ac.idx, ac.user, n, strings.Join(examples, ", "), history(conns, discs, t0)))
			}
		}
		dups += ac.duplicates()
		deliveries += ac.deliveries()
		ac.mu.Lock()
		problems += ac.problemN
		if ac.problemN > 0 && len(report) < 20 {
			report = append(report, fmt.Sprintf("client %d: %s", ac.idx, strings.Join(ac.problems, "; ")))
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

// history renders a client's connections relative to t0.
func history(conns []connectEvent, discs []disconnectEvent, t0 time.Time) string {
	var parts []string
	for _, c := range conns {
		s := fmt.Sprintf("connect %s at t0%+.3fs", c.server, c.at.Sub(t0).Seconds())
		if c.resumed {
			s += " resume=" + c.status.String()
		}
		parts = append(parts, s)
	}
	for _, d := range discs {
		parts = append(parts, fmt.Sprintf("disconnect at t0%+.3fs (%s)", d.at.Sub(t0).Seconds(), d.err))
	}
	return strings.Join(parts, "; ")
}

// moves describes how the clients of a drained or killed gateway came back.
type moves struct {
	moved      int
	reconnects []time.Duration // per moved client: its first handshake elsewhere after t0
	notBack    []string
	resumeBad  []string // handshakes after t0 that did not resume COMPLETE
	// maxPerSecond is the largest number of those handshakes in any one-second interval
	// (a sliding window, so no bucket alignment can hide a burst).
	maxPerSecond int
}

// checkMoves looks at the clients that were on victim at t0.
func checkMoves(moved []*appClient, victim string, t0 time.Time) moves {
	m := moves{moved: len(moved)}
	var times []time.Time
	for _, ac := range moved {
		conns, discs := ac.events()
		back := false
		for _, c := range conns {
			if c.at.Before(t0) {
				continue
			}
			if !c.resumed || c.status != pb.ResumeResult_STATUS_COMPLETE {
				m.resumeBad = append(m.resumeBad, fmt.Sprintf("client %d on %s: resumed=%v status=%s notRecovered=%v",
					ac.idx, c.server, c.resumed, c.status, c.notRecovered))
			}
			if !back && c.server != victim {
				back = true
				m.reconnects = append(m.reconnects, c.at.Sub(t0))
				times = append(times, c.at)
			}
		}
		if !back {
			m.notBack = append(m.notBack, fmt.Sprintf("client %d: %s", ac.idx, history(conns, discs, t0)))
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i, j := 0, 0; i < len(times); i++ {
		for times[i].Sub(times[j]) >= time.Second {
			j++
		}
		m.maxPerSecond = max(m.maxPerSecond, i-j+1)
	}
	slices.Sort(m.reconnects)
	return m
}

func (m moves) last() time.Duration {
	if len(m.reconnects) == 0 {
		return 0
	}
	return m.reconnects[len(m.reconnects)-1]
}

func (m moves) percentile(q float64) time.Duration {
	if len(m.reconnects) == 0 {
		return 0
	}
	return m.reconnects[min(int(q*float64(len(m.reconnects))), len(m.reconnects)-1)]
}

// checkUndisturbed asserts that clients of the other gateways kept their one connection.
func checkUndisturbed(t *testing.T, f *fleet, moved []*appClient, t0 time.Time) {
	t.Helper()
	var bad []string
	for _, ac := range f.clients {
		if slices.Contains(moved, ac) {
			continue
		}
		conns, discs := ac.events()
		if len(conns) != 1 || len(discs) != 0 {
			bad = append(bad, fmt.Sprintf("client %d: %s", ac.idx, history(conns, discs, t0)))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d clients of the other gateways were disturbed, e.g. %s", len(bad), strings.Join(bad[:min(len(bad), 5)], "\n  "))
	}
}
