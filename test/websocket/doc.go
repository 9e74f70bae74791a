// Package websocket tests the gateway's WebSocket listener (listen.websocket) end to end:
// real gateway processes (test/gwproc) with a real Kafka downlink behind the test LB
// (test/lb), and the Go SDK speaking WebSocket through test/wsclient — handshake, request,
// push and ack, then a drain: GOAWAY, the WebSocket close, and the session resumed on the
// other gateway with nothing lost.
package websocket
