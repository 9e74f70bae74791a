package conformance

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
)

// scenario is one conformance case: a name, the rules of docs/client-behaviour.md it checks,
// and its body. Scenarios that break gateways (a drain, a kill) or need another configuration
// start a fleet of their own; the others share one.
type scenario struct {
	name  string
	rules string
	run   func(t *testing.T, s *suite)
}

// suite is what a scenario gets: the shared fleet and a driver of its own.
type suite struct {
	shared *Fleet
	d      *Driver
}

// TestConformance runs every scenario against the driver TCPGW_CONFORMANCE_DRIVER chooses.
func TestConformance(t *testing.T) {
	shared := StartFleet(t, FleetOptions{Gateways: 2, Partitions: 2})
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			t.Logf("rules %s", sc.rules)
			sc.run(t, &suite{shared: shared, d: StartDriver(t)})
		})
	}
}

// connect runs the connect command for client on addr with token, edited by edit; it fails the
// test unless the SDK connected, and returns the connected state event.
func (s *suite) connect(t *testing.T, client, addr, token string, edit func(*wire.Command)) Received {
	t.Helper()
	mark := s.d.Mark()
	c := wire.Command{Op: "connect", Client: client, Address: addr, Token: token, DeviceID: "conformance-device", ClientVersion: "conformance/1"}
	if edit != nil {
		edit(&c)
	}
	s.d.MustCall(c)
	return s.d.WaitEvent(mark, eventTimeout, "connected state of "+client, IsState(client, "connected"))
}

// fast makes reconnects quick and unspread, for scenarios that are not about their timing.
func fast(c *wire.Command) {
	c.Reconnect = &wire.Reconnect{InitialMs: 50, MaxMs: 200, LostSpreadMs: -1}
}

// noEvent fails the test if an event matching match arrives from index from within d.
func (s *suite) noEvent(t *testing.T, from int, d time.Duration, what string, match func(Received) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if e, ok := s.d.Find(from, match); ok {
			t.Fatalf("unexpected %s: %s", what, describe([]Received{e}))
		}
		time.Sleep(50 * time.Millisecond) // a bounded watch for something that must not happen
	}
}

// TestREADMEListsEveryScenario keeps README.md's table and the scenarios in step: every
// scenario has a row, and every row names a scenario.
func TestREADMEListsEveryScenario(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "| `"); ok {
			name, _, _ = strings.Cut(name, "`")
			rows[name] = true
		}
	}
	for _, sc := range scenarios {
		if !rows[sc.name] {
			t.Errorf("README.md has no row for scenario %s", sc.name)
		}
		delete(rows, sc.name)
	}
	for name := range rows {
		t.Errorf("README.md lists %s, which is no scenario", name)
	}
}
