package control

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// SessionsPath is the control socket's read-only debugging endpoint: GET ?user=U lists the
// sessions of user U this pod holds. It shows who is connected from where, so it is served
// only here (pod-local, mode 0600), never on the admin port.
const SessionsPath = "/sessions"

// maxSessionsUser bounds the user id a request may name (the gateway's own ids are shorter).
const maxSessionsUser = 1024

// Session is one live session as the control socket lists it.
type Session struct {
	SessionID     string    `json:"sessionID"`
	UserID        string    `json:"userID"`
	DeviceID      string    `json:"deviceID,omitempty"`
	ClientVersion string    `json:"clientVersion,omitempty"`
	Groups        []string  `json:"groups,omitempty"`
	Remote        string    `json:"remote"`
	Connected     time.Time `json:"connected"`
}

// Gateway is what the control socket drives and reads.
type Gateway interface {
	Drainer
	Rebalancer
	// UserSessions lists the user's sessions on this pod.
	UserSessions(userID string) []Session
}

func handleSessions(g Gateway) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if user == "" || len(user) > maxSessionsUser {
			http.Error(w, fmt.Sprintf("name one user: ?user=ID (at most %d bytes)", maxSessionsUser), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		list := g.UserSessions(user)
		if list == nil {
			list = []Session{}
		}
		_ = enc.Encode(list)
	}
}

// Sessions asks the gateway on the control socket at path for the user's sessions.
func Sessions(ctx context.Context, path, user string) ([]Session, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://control"+SessionsPath+"?"+url.Values{"user": {user}}.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := socketClient(path).Do(req)
	if err != nil {
		return nil, dialError(path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("gateway answered %s: %s", resp.Status, body)
	}
	var out []Session
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("while reading the gateway's answer: %w", err)
	}
	return out, nil
}
