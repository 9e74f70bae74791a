// Package gwproc runs real gateway processes for tests: it builds cmd/gateway (and
// test/echobackend) once per test binary, starts children that die with the test, keeps
// their output (last lines, data race reports, taps on chosen lines), writes each gateway's
// configuration with free loopback ports, waits for /readyz and reads /status and /metrics.
//
// test/drain and test/hostile use it. Call Cleanup from TestMain to remove the built binaries:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		gwproc.Cleanup()
//		os.Exit(code)
//	}
package gwproc
