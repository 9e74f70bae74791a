// Package hostile is the hostile-client suite of issue 12: one test per finding, each
// performing the attack (or reproducing the defect) against a real gateway process, and each
// failing on the commit before its fix. The client here is not the Go SDK: it is a raw
// protocol client (Conn) that can send any frame or any bytes, in any order.
//
// The harness, for tests in this package:
//
//   - Start(t, Options) builds cmd/gateway once per test binary (test/gwproc), writes a
//     configuration for the test (HS256 key file, route "echo" to an in-process echo backend,
//     optional Kafka topics on the test broker of test/kafkatest), starts the process and waits
//     for /readyz. Options.Configure edits the configuration before it is written.
//   - Gateway.Token and Gateway.SignToken mint HS256 tokens the gateway accepts (or not).
//   - Dial opens a raw connection; Conn.Send, Conn.SendRaw, Conn.Read, Conn.Handshake,
//     Conn.ExpectError and Conn.ExpectClosed speak and check the wire protocol.
//   - Gateway.Metric reads a series from /metrics, Gateway.Readyz the readiness answer, and
//     Gateway.Log (from test/gwproc) the process's output.
//   - tls_test.go's startTLS starts a gateway with listen.tls (certificates from test/tlstest
//     in a directory laid out like a mounted Secret); dialTLS opens a raw client over TLS.
//
// `go test ./test/hostile/` runs the suite (make test includes it); it uses the broker named by
// TCPGW_KAFKA_BOOTSTRAP, or starts one of its own. TCPGW_HOSTILE_RACE_GATEWAYS=1 builds the
// gateway processes with the race detector. Tests that open many connections spread them over
// loopback source addresses (SourceAddr, DialFrom) unless per-address limits are their point.
package hostile
