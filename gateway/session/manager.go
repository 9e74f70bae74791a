package session

import (
	"slices"
	"sync"
)

// Key is a session's identity: session ids are chosen per user (by the client or the
// gateway), so two users' sessions with the same id are different sessions.
type Key struct{ UserID, SessionID string }

// Key is the session's identity in the Manager.
func (s *Session) Key() Key { return Key{UserID: s.UserID, SessionID: s.SessionID} }

// Manager indexes live, authenticated sessions by key (user, session id), user id and group,
// and keeps them all in a slice in registration order (All). It is the single owner of those
// indexes and of each registered session's place in the slice (Session.index); every method
// is safe for concurrent use. A user or group with one session costs its map slot only
// (set.go).
type Manager struct {
	mu      sync.RWMutex
	byID    map[Key]*Session
	byUser  map[string]set
	byGroup map[string]set
	// all holds every registered session, all[s.index] == s. A session leaving is replaced
	// by the last one, so the order is that of registration except where sessions left.
	// A broadcast walks it (All): a copy of contiguous memory, in the order the sessions
	// (and their sockets) were made, rather than a walk of byID's buckets in random order.
	all []*Session
}

// allShrinkMin is the capacity of Manager.all under which it is never shrunk.
const allShrinkMin = 1024

// NewManager makes an empty manager.
func NewManager() *Manager {
	return &Manager{
		byID:    make(map[Key]*Session),
		byUser:  make(map[string]set),
		byGroup: make(map[string]set),
	}
}

// Register adds s and returns the session it replaces (same user and session id), if any. The
// caller tells the old one to go away; the old one's later Unregister leaves s in place.
func (m *Manager) Register(s *Session) (replaced *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.byID[s.Key()]; ok && old != s {
		m.removeLocked(old)
		replaced = old
	}
	m.byID[s.Key()] = s
	s.index = len(m.all)
	m.all = append(m.all, s)
	add(m.byUser, s.UserID, s)
	for _, g := range s.Groups {
		add(m.byGroup, g, s)
	}
	return replaced
}

// Unregister removes s if it is still the registered session for its key. Closing a replaced
// connection therefore never removes the connection that replaced it.
func (m *Manager) Unregister(s *Session) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byID[s.Key()] != s {
		return false
	}
	m.removeLocked(s)
	return true
}

func (m *Manager) removeLocked(s *Session) {
	delete(m.byID, s.Key())
	last := len(m.all) - 1
	m.all[s.index] = m.all[last]
	m.all[s.index].index = s.index
	m.all[last] = nil
	m.all = m.all[:last]
	if c := cap(m.all); c > allShrinkMin && len(m.all) <= c/4 {
		// Most sessions left (a drain, a reconnect storm gone elsewhere): give the array back.
		m.all = slices.Clone(m.all)
	}
	remove(m.byUser, s.UserID, s)
	for _, g := range s.Groups {
		remove(m.byGroup, g, s)
	}
}

// Get returns the live session with this key.
func (m *Manager) Get(k Key) (*Session, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s, ok := m.byID[k]
	return s, ok
}

// User appends the sessions of a user to dst.
func (m *Manager) User(dst []*Session, userID string) []*Session {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.byUser[userID].appendTo(dst)
}

// Group appends the sessions tagged with group to dst.
func (m *Manager) Group(dst []*Session, group string) []*Session {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.byGroup[group].appendTo(dst)
}

// All appends every session to dst, in registration order (see Manager.all).
func (m *Manager) All(dst []*Session) []*Session {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append(dst, m.all...)
}

// HasUser reports whether any session of the user is here: the cheap check that lets the
// downlink consumer skip records for users held by other pods.
func (m *Manager) HasUser(userID string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.byUser[userID].len() > 0
}

// Len is the number of registered sessions.
func (m *Manager) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.byID)
}
