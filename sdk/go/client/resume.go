package client

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// ResumeState is what an app stores to resume its session after the OS killed it (R36): the
// session id, per partition the position the next resume would send (the larger of the last
// delivered offset and the confirmed watermark; -1 for a partition that was empty) and, while
// the reconnect a GOAWAY DRAINING or REBALANCE asked for is pending, that GOAWAY's resume token
// (R26). It never holds the auth token. Export it with
// Client.ResumeState after the app has stored the effect of the pushes it was delivered;
// import it with Options.Resume. MarshalText and UnmarshalText give the text form the Java
// SDK's ResumeState.encode/decode use, so a state stored by one reads in the other.
type ResumeState struct {
	SessionID   string
	Positions   map[int32]int64 // partition → offset
	ResumeToken string          // opaque; empty unless the reconnect of a GOAWAY DRAINING or REBALANCE is pending
}

// resumeStateMagic is the text form's first line; the number is its version.
const resumeStateMagic = "tcpgw-resume 1"

// maxResumeStateBytes bounds UnmarshalText's input: stored state may have been tampered with
// or truncated, and a gateway topic has far fewer partitions than this allows.
const maxResumeStateBytes = 1 << 20

// MarshalText gives four lines: the version marker, the session id, the resume token (may be
// empty) and the positions as partition:offset separated by spaces, in partition order.
func (s ResumeState) MarshalText() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(resumeStateMagic + "\n" + s.SessionID + "\n" + s.ResumeToken + "\n")
	for i, p := range slices.Sorted(maps.Keys(s.Positions)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%d", p, s.Positions[p])
	}
	b.WriteByte('\n')
	return []byte(b.String()), nil
}

// UnmarshalText parses MarshalText's form (and the Java SDK's ResumeState.encode).
func (s *ResumeState) UnmarshalText(text []byte) error {
	if len(text) > maxResumeStateBytes {
		return fmt.Errorf("client: resume state of %d bytes, more than %d", len(text), maxResumeStateBytes)
	}
	lines := strings.Split(string(text), "\n")
	if len(lines) < 4 || lines[0] != resumeStateMagic {
		return errors.New("client: not an exported tcpgateway resume state")
	}
	out := ResumeState{SessionID: lines[1], ResumeToken: lines[2], Positions: map[int32]int64{}}
	if lines[3] != "" {
		for _, f := range strings.Split(lines[3], " ") {
			ps, offs, ok := strings.Cut(f, ":")
			p, perr := strconv.ParseInt(ps, 10, 32)
			o, oerr := strconv.ParseInt(offs, 10, 64)
			if !ok || perr != nil || oerr != nil {
				return fmt.Errorf("client: resume state: bad position %q", f)
			}
			if _, dup := out.Positions[int32(p)]; dup {
				return fmt.Errorf("client: resume state: partition %d named twice", p)
			}
			out.Positions[int32(p)] = o
		}
	}
	if err := out.check(); err != nil {
		return err
	}
	*s = out
	return nil
}

// check refuses what no gateway sent: the handshake would be refused or resume nothing.
func (s ResumeState) check() error {
	switch {
	case s.SessionID == "":
		return errors.New("client: a resume state needs a session id")
	case strings.ContainsAny(s.SessionID, "\n \t\r"), strings.ContainsAny(s.ResumeToken, "\n\r"):
		return errors.New("client: resume state: session id or resume token holds a line break or space")
	}
	for p, o := range s.Positions {
		if p < 0 || o < -1 {
			return fmt.Errorf("client: resume state: position %d:%d (partitions from 0, offsets from -1)", p, o)
		}
	}
	return nil
}

// ResumeState is what to store to resume this session after an app restart (R36). Call it after
// the app has processed what it was delivered: a push whose effect was not stored by then is
// not replayed at the next start.
func (c *Client) ResumeState() ResumeState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ResumeState{SessionID: c.sessionID, Positions: c.resumePositionsLocked(), ResumeToken: c.resumeToken}
}

// resumePositionsLocked is what a resume sends (R23): per partition, the larger of the last
// delivered offset and the floor.
func (c *Client) resumePositionsLocked() map[int32]int64 {
	from := maps.Clone(c.floor)
	for p, o := range c.positions {
		if cur, ok := from[p]; !ok || o > cur {
			from[p] = o
		}
	}
	return from
}
