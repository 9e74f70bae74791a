package hostile

import (
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// The gateway closes a connection with a FIN after its last frame and keeps reading until the
// peer closes (bytes that crossed the close would otherwise turn the FIN into a reset, see
// TestDrainLateArrivalsGetGoAwayAndFIN). A peer that never closes holds its socket for at most
// the linger bound (2 s), counted in tcpgw_linger_timeouts_total.
func TestCloseLingerIsBounded(t *testing.T) {
	g := Start(t, Options{Configure: func(c *config.Config) {
		c.Limits.HandshakeTimeout = config.Duration{Duration: 300 * time.Millisecond}
	}})

	// A polite peer closes after the FIN: no timeout.
	polite := g.Dial()
	polite.ExpectError(pb.ErrorCode_ERROR_CODE_HANDSHAKE_TIMEOUT)
	polite.ExpectClosed()
	polite.Close()
	wait.For(t, 5*time.Second, "the polite connection to stop lingering", func() bool {
		return g.Metric("tcpgw_connections_lingering") == 0 && g.Metric("tcpgw_closes_total", "reason", "handshake_timeout") == 1
	})

	// A stubborn one keeps its side open and keeps writing after the FIN: the gateway reads
	// and drops what it sends (no reset while it lingers), then closes at the bound.
	stubborn := g.Dial()
	stubborn.ExpectError(pb.ErrorCode_ERROR_CODE_HANDSHAKE_TIMEOUT)
	stubborn.ExpectClosed()
	stubborn.SendRaw([]byte{0, 0, 0, 2, 0x0a, 0x00}) // bytes after the gateway's FIN
	wait.For(t, time.Second, "tcpgw_connections_lingering to be 1 after the FIN (the bound is 2 s)", func() bool {
		return g.Metric("tcpgw_connections_lingering") == 1
	})
	wait.For(t, 10*time.Second, "the stubborn connection to be closed at the linger bound", func() bool {
		return g.Metric("tcpgw_linger_timeouts_total") == 1 && g.Metric("tcpgw_connections_lingering") == 0
	})
}
