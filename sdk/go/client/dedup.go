package client

// idWindow remembers the last n message ids delivered, to drop a publisher's duplicate records
// (same message id, another position). Memory is bounded: a ring of n ids and a set of the
// same ids. Not safe for concurrent use: the Client's mu guards it.
type idWindow struct {
	ring []string
	next int // ring index the next id overwrites
	set  map[string]struct{}
}

// newIDWindow remembers n ids; n <= 0 remembers none (dedup by id off).
func newIDWindow(n int) *idWindow {
	if n <= 0 {
		return &idWindow{}
	}
	return &idWindow{ring: make([]string, 0, n), set: make(map[string]struct{}, n)}
}

// add records id and reports whether it is new. Empty ids are always new: they cannot be told
// apart.
func (w *idWindow) add(id string) bool {
	if id == "" || cap(w.ring) == 0 {
		return true
	}
	if _, dup := w.set[id]; dup {
		return false
	}
	if len(w.ring) < cap(w.ring) {
		w.ring = append(w.ring, id)
	} else {
		delete(w.set, w.ring[w.next])
		w.ring[w.next] = id
		w.next = (w.next + 1) % len(w.ring)
	}
	w.set[id] = struct{}{}
	return true
}
