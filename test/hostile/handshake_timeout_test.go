package hostile

import (
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// Finding 6: a client that connects and stays silent was closed with ERROR HANDSHAKE_TIMEOUT
// but never counted in tcpgw_handshakes_total{result="handshake_timeout"}, which
// docs/metrics.md lists: the attack (holding connections without a handshake) was invisible.
func TestSilentClientCountedAsHandshakeTimeout(t *testing.T) {
	g := Start(t, Options{Configure: func(c *config.Config) {
		c.Limits.HandshakeTimeout = config.Duration{Duration: 300 * time.Millisecond}
	}})
	const silent = 3
	for range silent {
		c := g.Dial()
		c.ExpectError(pb.ErrorCode_ERROR_CODE_HANDSHAKE_TIMEOUT)
		c.ExpectClosed()
	}
	wait.For(t, 5*time.Second, "tcpgw_handshakes_total{result=handshake_timeout} to count the silent clients", func() bool {
		return g.Metric("tcpgw_handshakes_total", "result", "handshake_timeout") == silent
	})
	// An honest client is unaffected.
	c := g.Dial()
	if ack := c.Handshake(g.Token("alice"), nil); ack.UserId != "alice" {
		t.Errorf("handshake ack for user %q, want alice", ack.UserId)
	}
}
