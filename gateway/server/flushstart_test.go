package server

import (
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bytedance/gopkg/util/gopool"
	"github.com/panjf2000/ants/v2"

	"github.com/tcpgateway/tcpgateway/gateway/session"
)

// nopTransport writes nothing: BenchmarkFlushStart measures what starting a flush costs, not
// the write.
type nopTransport struct{}

func (nopTransport) Write([][]byte) error { return nil }
func (nopTransport) Close() error         { return nil }

// BenchmarkFlushStart sends one frame to each of 1024 idle sessions, as a broadcast does, and
// waits for every flush to end: each Send starts a flush. It compares, in the same run, the
// ways Hooks.Go can start it: a goroutine of its own (Hooks.Go nil, what the server does),
// an ants pool without a capacity bound (a flush may block on a slow peer for writeTimeout,
// so a bounded pool would make other flushes wait behind it), and gopool's default pool (what
// netpoll's dependency bytedance/gopkg offers). cpu-ns/flush is the process's CPU time per
// flush, ns/flush the wall time.
//
//	go test -run '^$' -bench BenchmarkFlushStart -benchtime 1000x -count 5 ./gateway/server/
func BenchmarkFlushStart(b *testing.B) {
	const sessions = 1024
	frame := make([]byte, 64)
	for _, mode := range []string{"goroutine", "ants", "gopool"} {
		b.Run(mode, func(b *testing.B) {
			var done sync.WaitGroup
			hooks := &session.Hooks{Flushed: func(int, int, int) { done.Done() }}
			switch mode {
			case "ants":
				pool, err := ants.NewPool(-1)
				if err != nil {
					b.Fatal(err)
				}
				defer pool.Release()
				hooks.Go = func(f func()) {
					if err := pool.Submit(f); err != nil {
						b.Error(err)
					}
				}
			case "gopool":
				hooks.Go = gopool.Go
			}
			limits := &session.Limits{QueueFrames: 16, QueueBytes: 1 << 20}
			all := make([]*session.Session, sessions)
			for i := range all {
				all[i] = session.New(nopTransport{}, "", limits, hooks, time.Now())
			}
			b.ResetTimer()
			cpu := processCPU(b)
			for range b.N {
				done.Add(sessions)
				for _, s := range all {
					if err := s.Send(frame); err != nil {
						b.Fatal(err)
					}
				}
				done.Wait()
			}
			b.StopTimer()
			flushes := float64(b.N * sessions)
			b.ReportMetric(float64(processCPU(b)-cpu)/flushes, "cpu-ns/flush")
			b.ReportMetric(float64(b.Elapsed())/flushes, "ns/flush")
		})
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
