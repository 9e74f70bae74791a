package session

// set is the sessions under one key of a Manager index (a user, a group). Most users hold one
// session, so a single session is kept inline and a map is made only for the second one:
// an index entry then costs its map slot and no allocation. Values, not pointers: with
// and without return the updated set, which the index stores back.
type set struct {
	one  *Session              // the only session, when more is nil
	more map[*Session]struct{} // two or more sessions; one is nil then
}

// with returns x plus s.
func (x set) with(s *Session) set {
	switch {
	case x.more != nil:
		x.more[s] = struct{}{}
	case x.one == nil || x.one == s:
		x.one = s
	default:
		x.more = map[*Session]struct{}{x.one: {}, s: {}}
		x.one = nil
	}
	return x
}

// without returns x less s; a map left with one session goes back inline.
func (x set) without(s *Session) set {
	if x.more == nil {
		if x.one == s {
			x.one = nil
		}
		return x
	}
	delete(x.more, s)
	if len(x.more) == 1 {
		for last := range x.more {
			x.one = last
		}
		x.more = nil
	}
	return x
}

func (x set) len() int {
	if x.more != nil {
		return len(x.more)
	}
	if x.one != nil {
		return 1
	}
	return 0
}

// appendTo appends the sessions of x to dst.
func (x set) appendTo(dst []*Session) []*Session {
	if x.one != nil {
		return append(dst, x.one)
	}
	for s := range x.more {
		dst = append(dst, s)
	}
	return dst
}

func add(index map[string]set, key string, s *Session) {
	index[key] = index[key].with(s)
}

func remove(index map[string]set, key string, s *Session) {
	x, ok := index[key]
	if !ok {
		return
	}
	if x = x.without(s); x.len() == 0 {
		delete(index, key)
		return
	}
	index[key] = x
}
