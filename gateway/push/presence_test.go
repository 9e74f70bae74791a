package push

import (
	"strings"
)

// The folding rules are tested by TestPresenceVectors (testdata/presence.txt, shared with the
// Java push SDK); the view of what real gateway processes publish through a real broker by
// test/events; Consume over a real broker by TestPresenceConsume.

// where lists the user's sessions as "session@connection,...".
func where(p *Presence, user string) string {
	var parts []string
	for _, o := range p.User(user) {
		parts = append(parts, o.SessionID+"@"+o.ConnectionID)
	}
	return strings.Join(parts, ",")
}
