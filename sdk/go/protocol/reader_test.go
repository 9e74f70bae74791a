package protocol_test

import "io"

// streamReader is a protocol.Reader over bytes that arrive in pieces (write), standing in for
// the gateway's netpoll buffers, which this module does not depend on (gateway/server tests
// Decode on a netpoll.LinkBuffer). Each write first overwrites the bytes already consumed, as
// netpoll reuses released memory: a decoded frame that aliased them would change.
type streamReader struct {
	b   []byte
	off int // b[:off] has been consumed
}

func (r *streamReader) write(p []byte) {
	clear(r.b[:r.off])
	r.b = append(r.b[:0], r.b[r.off:]...)
	r.off = 0
	r.b = append(r.b, p...)
}

func (r *streamReader) Len() int { return len(r.b) - r.off }

func (r *streamReader) Peek(n int) ([]byte, error) {
	if n > r.Len() {
		return nil, io.ErrUnexpectedEOF
	}
	return r.b[r.off : r.off+n], nil
}

func (r *streamReader) Skip(n int) error {
	_, err := r.Next(n)
	return err
}

func (r *streamReader) Next(n int) ([]byte, error) {
	p, err := r.Peek(n)
	if err == nil {
		r.off += n
	}
	return p, err
}
