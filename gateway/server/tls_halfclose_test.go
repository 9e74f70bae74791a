package server_test

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// A TLS client that half-closes (close_notify, FIN) right after a frame the gateway refuses
// still gets the ERROR that says why (before the fix the reader saw the FIN, closed the
// connection and the queued ERROR was dropped). The same bug FuzzWebSocket found on the
// WebSocket path (TestWebSocketHalfCloseAfterRefusedMessage).
func TestTLSHalfCloseAfterRefusedFrame(t *testing.T) {
	h := startTLS(t, nil)
	for range 5 { // the FIN raced the gateway's last frame
		r, _ := h.rawTLS()
		r.writeBytes([]byte{0, 0, 0, 2, 0xff, 0xff}) // two bytes that are no protobuf frame
		tc := r.nc.(*tls.Conn)
		if err := tc.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if err := tc.NetConn().(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		r.expectError(pb.ErrorCode_ERROR_CODE_BAD_FRAME)
	}
}
