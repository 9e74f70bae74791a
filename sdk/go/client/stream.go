package client

import (
	"bufio"
	"net"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// framer reads and writes whole protocol frames on one transport connection: the TCP (or TLS)
// byte stream (streamFramer) or WebSocket messages (wsFramer). A conn's reader goroutine owns
// read; writes are serialised by the conn.
type framer interface {
	// read returns the next frame, of at most max body bytes; buf is reused when large enough
	// and the frame does not alias it.
	read(max int, buf []byte) (*pb.Frame, []byte, error)
	// write sends one encoded frame, length prefix included.
	write(b []byte) error
	// close ends the connection; cause is why (nil: the app closed it).
	close(cause error)
}

// streamFramer carries frames as the byte stream of a TCP or TLS connection.
type streamFramer struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

func newStreamFramer(nc net.Conn) *streamFramer {
	return &streamFramer{nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
}

func (s *streamFramer) read(max int, buf []byte) (*pb.Frame, []byte, error) {
	return protocol.Read(s.r, max, buf)
}

func (s *streamFramer) write(b []byte) error {
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.w.Flush()
}

func (s *streamFramer) close(error) { s.nc.Close() }
