package server

import (
	"github.com/gobwas/ws"

	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// WebSocket close codes (RFC 6455 section 7.4.1; 1013 from the IANA registry) the gateway
// sends; wsCloseCode maps every close reason onto one (docs/protocol.md#websocket-close-codes).
const (
	wsNormal          ws.StatusCode = 1000
	wsGoingAway       ws.StatusCode = 1001
	wsProtocolError   ws.StatusCode = 1002
	wsUnsupportedData ws.StatusCode = 1003
	wsInvalidPayload  ws.StatusCode = 1007
	wsPolicyViolation ws.StatusCode = 1008
	wsMessageTooBig   ws.StatusCode = 1009
	wsInternalError   ws.StatusCode = 1011
	wsTryAgainLater   ws.StatusCode = 1013
)

// wsCloseCode is the close code of a connection the gateway closes for reason. The close
// frame's reason text is the reason itself, as in tcpgw_closes_total{reason}.
func wsCloseCode(reason session.CloseReason) ws.StatusCode {
	switch reason {
	case session.ReasonClientClosed:
		return wsNormal
	case session.ReasonDraining, session.ReasonShutdown, session.ReasonReplaced, session.ReasonRebalance:
		return wsGoingAway
	case session.ReasonWebSocketUnmasked, session.ReasonWebSocketProtocol:
		return wsProtocolError
	case session.ReasonWebSocketText, session.ReasonWebSocketFragmented:
		return wsUnsupportedData
	case session.ReasonBadFrame:
		return wsInvalidPayload
	case session.ReasonFrameTooLarge:
		return wsMessageTooBig
	case session.ReasonInternal:
		return wsInternalError
	case session.ReasonServerFull, reasonAddressLimit:
		return wsTryAgainLater
	default:
		// handshake_required, handshake_timeout, unauthenticated, unsupported_version,
		// idle_timeout, slow_consumer, token_expired, write_failed, ...
		return wsPolicyViolation
	}
}

// reasonAddressLimit is the close reason of ERROR ADDRESS_LIMIT.
var reasonAddressLimit = session.ReasonForCode(pb.ErrorCode_ERROR_CODE_ADDRESS_LIMIT)

// wsCloseBody is the payload of the gateway's close frame for reason: code, then the reason
// (at most 123 bytes, the room a control frame leaves; every reason is shorter).
func wsCloseBody(reason session.CloseReason) []byte {
	text := string(reason)
	if len(text) > ws.MaxControlFramePayloadSize-2 {
		text = text[:ws.MaxControlFramePayloadSize-2]
	}
	return ws.NewCloseFrameBody(wsCloseCode(reason), text)
}
