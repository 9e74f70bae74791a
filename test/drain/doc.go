// Package drain holds whole-process drain and resume tests: three real gateway processes
// (cmd/gateway, built by the test) behind the in-process test load balancer (test/lb), a
// real Kafka broker (test/kafkatest), hundreds of SDK clients and a producer pushing a
// steady mix of user, group and broadcast records. The tests drain one gateway through its
// preStop path (`gateway drain -wait` run as a process against the gateway's control socket,
// then SIGTERM) or SIGKILL it, and check what the applications see: every record Kafka
// accepted arrives once, in order per user, every moved client reconnects within the window
// at a bounded rate, in-flight requests get their responses and the drained process exits 0
// before its deadline. TestMixedLanguageDrain drains a fleet of Go, Java and TypeScript
// clients at once (the other languages through their conformance drivers, test/sdkdriver;
// TCPGW_JAVA_DRIVER and TCPGW_TS_DRIVER name them, a missing one is skipped) and checks the
// same guarantees for each language. TestSIGKILLRestartSameServerID kills the only gateway
// and starts it again under the same server id: it reads from its group's committed offsets,
// no gap, and its clients get what was published while it was dead.
//
// `go test ./test/drain/` (and `make test`) runs a scaled version; TCPGW_DRAIN_LONG=1 runs
// the figures of the issue (>= 1000 clients, >= 500 records/s). docs/drain.md has the
// commands, the drain sequence, its knobs and measured figures.
//
// The package has no code outside its tests.
package drain
