package browser

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// State is window.tcpgwState: what the page's client saw (page/page.js).
type State struct {
	Phase       string       `json:"phase"` // loading, connecting, connected, failed, stopped
	Connects    []Connect    `json:"connects"`
	Disconnects []Disconnect `json:"disconnects"`
	Pushes      []Push       `json:"pushes"`
	Refused     []Refusal    `json:"refused"`
	Stopped     string       `json:"stopped"`
	Errors      []string     `json:"errors"`
}

// Connect is one handshake: the gateway's HANDSHAKE_ACK.
type Connect struct {
	At        int64  `json:"at"` // the page's clock, Unix milliseconds
	ServerID  string `json:"serverId"`
	SessionID string `json:"sessionId"`
	UserID    string `json:"userId"`
	Resume    string `json:"resume"` // COMPLETE, NOT_RECOVERED, or "" for a first connect
}

// Disconnect is one connection lost.
type Disconnect struct {
	At     int64  `json:"at"`
	Error  string `json:"error"`
	GoAway string `json:"goAway"` // the GOAWAY's reason (DRAINING, ...), "" when none came
}

// Push is one push the SDK delivered to the page.
type Push struct {
	At          int64  `json:"at"`
	ID          string `json:"id"`
	Partition   int32  `json:"partition"`
	Offset      string `json:"offset"`
	Payload     string `json:"payload"`
	AckRequired bool   `json:"ackRequired"`
	Acked       bool   `json:"acked"`    // the ack was written
	AckError    string `json:"ackError"` // why the ack failed
}

// Refusal is a non-fatal ERROR frame.
type Refusal struct {
	At     int64  `json:"at"`
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// IDs are the pushes' message ids in delivery order.
func (s State) IDs() []string {
	ids := make([]string, len(s.Pushes))
	for i, p := range s.Pushes {
		ids[i] = p.ID
	}
	return ids
}

// Has reports whether a push with the message id was delivered.
func (s State) Has(id string) bool {
	return slices.ContainsFunc(s.Pushes, func(p Push) bool { return p.ID == id })
}

// Server is the gateway of the last handshake ("" before the first).
func (s State) Server() string {
	if len(s.Connects) == 0 {
		return ""
	}
	return s.Connects[len(s.Connects)-1].ServerID
}

// Failed says why the page's client cannot go on ("" while it can).
func (s State) Failed() string {
	switch {
	case len(s.Errors) > 0:
		return fmt.Sprintf("the page failed: %v", s.Errors)
	case s.Stopped != "":
		return "the client stopped: " + s.Stopped
	}
	return ""
}

// evalTimeout bounds one read of the page's state.
const evalTimeout = 10 * time.Second

// State reads window.tcpgwState.
func (tab *Tab) State() (State, error) {
	return Eval[State](tab, evalTimeout, "window.tcpgwState")
}

// pollEvery: the page's state changes without telling the test (no event to wait on).
const pollEvery = 20 * time.Millisecond

// WaitState reads the page's state until cond holds and returns it; the test fails after
// timeout, or at once when the client failed or stopped.
func (tab *Tab) WaitState(t testing.TB, timeout time.Duration, what string, cond func(State) bool) State {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := tab.State()
		if err == nil && cond(s) {
			return s
		}
		switch {
		case err == nil && s.Failed() != "":
			t.Fatalf("waiting for %s: %s\nbrowser output:\n%s", what, s.Failed(), tab.b.Log())
		case time.Now().After(deadline):
			t.Fatalf("timed out after %v waiting for %s (read error %v); the page's state: %+v\nbrowser output:\n%s", timeout, what, err, s, tab.b.Log())
		}
		time.Sleep(pollEvery)
	}
}
