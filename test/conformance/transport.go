package conformance

import (
	"fmt"
	"os"
	"strings"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// EnvTransport chooses how the driver's clients reach the gateways: empty or "tcp" (the
// clients listener), or "websocket": every fleet gateway also serves listen.websocket, the LB
// and the Links carry that port, and the driver is given ws:// (wss:// with TLS) URLs.
const EnvTransport = "TCPGW_CONFORMANCE_TRANSPORT"

// Transports EnvTransport names.
const (
	TransportTCP       = "tcp"
	TransportWebSocket = "websocket"
)

// transport is the suite's transport, read once: a value it does not know fails every test
// (TestMain) rather than silently running over TCP.
var transport, transportErr = parseTransport(os.Getenv(EnvTransport))

func parseTransport(v string) (string, error) {
	switch strings.TrimSpace(v) {
	case "", TransportTCP:
		return TransportTCP, nil
	case TransportWebSocket:
		return TransportWebSocket, nil
	default:
		return "", fmt.Errorf("%s=%q: want %q or %q", EnvTransport, v, TransportTCP, TransportWebSocket)
	}
}

// overWebSocket reports whether the suite runs over WebSocket.
func overWebSocket() bool { return transport == TransportWebSocket }

// clientAddress is what the driver dials to reach hostport, a listener of the suite's
// transport: hostport itself over TCP, else the WebSocket URL of the gateway's default path.
func clientAddress(hostport string, tls bool) string {
	if !overWebSocket() {
		return hostport
	}
	scheme := "ws"
	if tls {
		scheme = "wss"
	}
	return scheme + "://" + hostport + config.DefaultWebSocketPath
}
