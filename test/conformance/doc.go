// Package conformance is the cross-language conformance suite of the client SDKs: one harness
// that starts real gateway processes (test/gwproc) behind a load balancer (test/lb), a real
// Kafka broker (test/kafkatest) and an uplink backend, and drives an SDK through a driver
// program speaking the line-oriented JSON protocol of DRIVER.md. Each scenario is a named
// subtest of TestConformance citing the rules of docs/client-behaviour.md it checks.
//
// The driver is chosen by TCPGW_CONFORMANCE_DRIVER: empty or "go" builds and runs godriver
// (the Go SDK, sdk/go/client); anything else is a command line run with `sh -c`. The suite
// uses the broker named by TCPGW_KAFKA_BOOTSTRAP, or starts one of its own. See README.md.
package conformance
