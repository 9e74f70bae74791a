package client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"testing/iotest"

	"github.com/gobwas/ws"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// sinkConn is the write side of a connection whose read side the fuzzer plays: pongs and
// close frames go nowhere.
type sinkConn struct{ net.Conn }

func (sinkConn) Write(p []byte) (int, error) { return len(p), nil }

// FuzzWebSocketRead feeds arbitrary bytes from the gateway, after the upgrade, to the client's
// WebSocket reader, whole and one byte per read (frames split anywhere): it never panics, a
// frame it returns has a body and came from a message no longer than the limit, and it stops
// with an error at the end of the input.
func FuzzWebSocketRead(f *testing.F) {
	frame, _ := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Pong{Pong: &pb.Pong{}}}, 1<<16)
	var seed bytes.Buffer
	_ = ws.WriteFrame(&seed, ws.NewBinaryFrame(frame))
	_ = ws.WriteFrame(&seed, ws.NewPingFrame([]byte("hb")))
	_ = ws.WriteFrame(&seed, ws.NewBinaryFrame(append(append([]byte{}, frame...), frame...)))
	f.Add(seed.Bytes())
	f.Add([]byte{0x82, 0x05, 0, 0, 0, 1, 0})             // a message too short for its prefix
	f.Add([]byte{0x82, 0x7f, 0, 0, 0, 0, 0, 0x10, 0, 4}) // 1 MiB + 4 announced, prefix cut
	f.Add([]byte{0x88, 0x02, 0x03, 0xe9})                // close 1001
	f.Add([]byte{0x81, 0x00})                            // an empty text message
	const limit = 1024
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, r := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data))} {
			w := &wsFramer{nc: sinkConn{}, r: bufio.NewReader(r)}
			var buf []byte
			for i := 0; ; i++ {
				if i > len(data) {
					t.Fatalf("%d frames from %d bytes", i, len(data))
				}
				fr, b, err := w.read(limit, buf)
				buf = b
				if err != nil {
					var ce *WebSocketCloseError
					var pe *wsProtocolError
					_, isFrame := protocol.IsFrameError(err)
					if !isFrame && !errors.As(err, &ce) && !errors.As(err, &pe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ws.ErrHeaderLengthMSB) && !errors.Is(err, ws.ErrHeaderLengthUnexpected) {
						t.Fatalf("untyped error %T: %v", err, err)
					}
					break
				}
				if fr == nil || fr.Body == nil {
					t.Fatal("a frame without a body")
				}
				if cap(buf) > protocol.HeaderLen+limit {
					t.Fatalf("a buffer of %d bytes for a limit of %d", cap(buf), limit)
				}
			}
		}
	})
}
