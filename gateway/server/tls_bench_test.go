package server_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// cpuTime is the process's user+system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFrameExchange measures frame exchanges on established sessions, in plaintext
// (netpoll) and over TLS (crypto/tls), in the same run: PINGs answered by PONGs, and REQUESTs
// of 1 KiB answered through the in-process echo backend. 32 connections each keep 8 frames
// in flight, so the gateway is busy (one connection waiting on each answer would measure
// netpoll's busy polling rather than work). cpu-µs/op is the process's CPU time per
// exchange: the gateway's and the raw clients' together (over TLS both sides encrypt and
// decrypt), so it overstates the gateway's share but compares the transports.
//
//	go test -run '^$' -bench BenchmarkFrameExchange -benchtime 2s -count 3 ./gateway/server/
func BenchmarkFrameExchange(b *testing.B) {
	const conns, window = 32, 8
	payload := bytes.Repeat([]byte("x"), 1024)
	for _, transport := range []string{"plaintext", "tls"} {
		for _, kind := range []string{"ping", "request_1KiB"} {
			b.Run(transport+"/"+kind, func(b *testing.B) {
				var h *harness
				var dial func() *raw
				if transport == "tls" {
					th := startTLS(b, func(c *config.Config) { c.Limits.RequestsPerSecond = 1e9; c.Limits.RequestBurst = 1e9 })
					h = th.harness
					dial = func() *raw { r, _ := th.rawTLS(); return r }
				} else {
					h = start(b, nil, func(c *config.Config) { c.Limits.RequestsPerSecond = 1e9; c.Limits.RequestBurst = 1e9 })
					dial = h.raw
				}
				frame := func(seq uint64) []byte {
					f := &pb.Frame{Seq: seq, Body: &pb.Frame_Ping{Ping: &pb.Ping{}}}
					if kind != "ping" {
						f = &pb.Frame{Seq: seq, Body: &pb.Frame_Request{Request: &pb.Request{Service: "echo", Method: "m", Payload: payload}}}
					}
					out, err := protocol.Append(nil, f, 1<<20)
					if err != nil {
						b.Fatal(err)
					}
					return out
				}
				rs := make([]*raw, conns)
				for i := range rs {
					rs[i] = dial()
					rs[i].handshake(h.token(fmt.Sprintf("bench-%d", i)))
				}
				// run sends n frames on each connection, window at a time, and reads every answer.
				run := func(n int) {
					var wg sync.WaitGroup
					for _, r := range rs {
						wg.Add(1)
						go func() {
							defer wg.Done()
							var buf []byte
							for sent := 0; sent < n; {
								k := min(window, n-sent)
								var batch []byte
								for j := range k {
									batch = append(batch, frame(uint64(sent+j+1))...)
								}
								if _, err := r.nc.Write(batch); err != nil {
									b.Error(err)
									return
								}
								for range k {
									var err error
									if _, buf, err = protocol.Read(r.r, 1<<20, buf); err != nil {
										b.Error(err)
										return
									}
								}
								sent += k
							}
						}()
					}
					wg.Wait()
				}
				run(50) // warm up: buffers, TLS records, the backend's connections
				per := max(b.N/conns, 1)
				cpu0 := cpuTime(b)
				b.ResetTimer()
				run(per)
				b.StopTimer()
				b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(per*conns), "cpu-µs/op")
			})
		}
	}
}

// BenchmarkTLSConnect measures a new TLS connection: TCP connect, TLS handshake (TLS 1.3,
// ECDSA P-256 certificate, Go's default key exchange), close, one at a time. cpu-µs/op is
// the process's CPU per connection, the gateway's and the client's together: the cost a
// reconnect storm multiplies.
//
//	go test -run '^$' -bench BenchmarkTLSConnect -benchtime 2s -count 3 ./gateway/server/
func BenchmarkTLSConnect(b *testing.B) {
	th := startTLS(b, func(c *config.Config) {
		c.Limits.PerAddress.HandshakesPerSecond = 1e9
		c.Limits.PerAddress.HandshakeBurst = 1e9
	})
	cfg := th.ca.ClientConfig()
	cfg.ServerName = "localhost"
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tc, err := tls.Dial("tcp", th.addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		tc.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}
