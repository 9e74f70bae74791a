package session

import (
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// CloseReason says why a connection ended. The same string appears in logs, in the
// closes_total{reason} metric and, where the client is told, as the ERROR frame's code.
type CloseReason string

const (
	// Told to the client with an ERROR frame of the same name.
	ReasonBadFrame           = CloseReason("bad_frame")
	ReasonFrameTooLarge      = CloseReason("frame_too_large")
	ReasonHandshakeRequired  = CloseReason("handshake_required")
	ReasonHandshakeTimeout   = CloseReason("handshake_timeout")
	ReasonUnauthenticated    = CloseReason("unauthenticated")
	ReasonUnsupportedVersion = CloseReason("unsupported_version")
	ReasonServerFull         = CloseReason("server_full")
	ReasonIdleTimeout        = CloseReason("idle_timeout")
	ReasonSlowConsumer       = CloseReason("slow_consumer")
	ReasonInternal           = CloseReason("internal")

	// Told to the client with a GOAWAY.
	ReasonReplaced = CloseReason("replaced")
	ReasonDraining = CloseReason("draining")
	// A rebalance moved the session (GOAWAY REBALANCE) and the client had not closed the
	// connection drain.flushTimeout later.
	ReasonRebalance = CloseReason("rebalance")

	// Told with a WebSocket close frame (listen.websocket), no ERROR frame: the client broke
	// the WebSocket mapping of the protocol (docs/protocol.md#websocket).
	ReasonWebSocketText       = CloseReason("websocket_text")       // a text message: frames are binary
	ReasonWebSocketFragmented = CloseReason("websocket_fragmented") // a message in fragments: one frame, one whole message
	ReasonWebSocketUnmasked   = CloseReason("websocket_unmasked")   // a client frame without a mask (RFC 6455 5.1)
	ReasonWebSocketProtocol   = CloseReason("websocket_protocol")   // reserved bits or opcode, a bad control frame

	// Not told: the peer is gone or the process is stopping.
	ReasonClientClosed = CloseReason("client_closed")
	// The TLS handshake failed (listen.tls): crypto/tls told the client with an alert, when
	// it could.
	ReasonTLSFailed = CloseReason("tls_failed")
	// The WebSocket upgrade did not happen (listen.websocket): the client got an HTTP error
	// (tcpgw_websocket_upgrades_total says which) or nothing (it timed out or went away).
	ReasonWebSocketUpgrade = CloseReason("websocket_upgrade_failed")
	ReasonWriteFailed      = CloseReason("write_failed")
	ReasonShutdown         = CloseReason("shutdown")
)

// ReasonForCode maps an ERROR frame's code to the close reason of the same name.
func ReasonForCode(c pb.ErrorCode) CloseReason { return CloseReason(protocol.Reason(c)) }
