package server

import (
	"context"
	"time"
)

// conn is a context.Context with no deadline, no cancellation and no values: netpoll keeps the
// context onConnect returns and passes it to onRequest, and returning the
// conn itself there saves a context.WithValue (48 bytes) per connection. Nothing derives
// contexts from it or waits on it.
var _ context.Context = (*conn)(nil)

func (*conn) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*conn) Done() <-chan struct{}       { return nil }
func (*conn) Err() error                  { return nil }
func (*conn) Value(any) any               { return nil }
