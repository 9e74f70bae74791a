package conformance

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
)

// writeFailureRounds is how many times error_wins_over_write_failure breaks a connection.
const writeFailureRounds = 8

// refusals is n non-fatal ERRORs: frames the SDK's reader must handle (and report to the app)
// before it reaches what follows them, while its writers go on.
func refusals(t *testing.T, n int) []byte {
	t.Helper()
	var b []byte
	for i := range n {
		var err error
		b, err = protocol.Append(b, &pb.Frame{Body: &pb.Frame_Error{Error: &pb.Error{
			Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_PUSH, Message: fmt.Sprintf("filler %d", i)}}}, 1<<16)
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// The reader decides the cause (R37): while the app keeps sending requests, the gateway's side
// sends non-fatal ERRORs, a fatal ERROR, FIN and at once a reset (Link.InjectThenReset). The
// SDK's writes after the reset fail, most often before its reader, busy with the refusals, has
// reached the fatal ERROR. Each round the disconnected cause must be that ERROR's code and
// message, never the transport error of a failed write, and every request that failed must have
// failed with connection_lost; the client reconnects for the next round.
func errorWinsOverWriteFailure(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{Configure: func(c *config.Config) {
		c.Limits.HeartbeatInterval = config.Duration{Duration: 10 * time.Second}
		c.Limits.IdleTimeout = config.Duration{Duration: 30 * time.Second}
		c.Limits.RequestsPerSecond = 10000
		c.Limits.RequestBurst = 10000
	}})
	link := StartLink(t, f.Listener(f.Gateways[0]))
	link.Record() // whole frames: the injection lands between two of the gateway's frames
	s.connect(t, "", link.Addr(), f.Token("writer"), fast)
	filler := refusals(t, 400)
	var ids []int64
	for round := range writeFailureRounds {
		mark := s.d.Mark()
		message := fmt.Sprintf("round %d", round)
		stop := make(chan struct{})
		var flood sync.WaitGroup
		var mu sync.Mutex
		flood.Add(1)
		go func() {
			defer flood.Done()
			tick := time.NewTicker(500 * time.Microsecond) // a steady stream of writes
			defer tick.Stop()
			for range 4000 {
				id := s.d.Send(wire.Command{Op: "request", Service: "echo", Method: "flood", DeadlineMs: 20_000})
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		// Requests are going out (answered: they passed the link) before the gateway's side ends.
		s.d.WaitEvent(mark, eventTimeout, "answered requests", func(e Received) bool {
			return e.Event.Event == "result" && e.Response != nil
		})
		link.InjectThenReset(append(filler, fatalError(t, pb.ErrorCode_ERROR_CODE_INTERNAL, message)...))
		gone := s.d.WaitEvent(mark, eventTimeout, "the end of the connection", IsState("", "disconnected"))
		s.d.WaitEvent(mark, eventTimeout, "the reconnect", IsState("", "connected"))
		close(stop)
		flood.Wait()
		if c := gone.Cause; c == nil || c.Kind != wire.KindServerError || c.Code != "INTERNAL" || c.Message != message {
			t.Errorf("round %d: disconnected with %s, want server_error INTERNAL %q", round, failureString(gone.Cause), message)
		}
	}
	lost, other := 0, map[string]int{}
	for _, id := range ids {
		r := s.d.Result(id, eventTimeout)
		switch {
		case r.Error == nil:
		case r.Error.Kind == wire.KindConnLost:
			lost++
		default:
			other[r.Error.Kind]++
		}
	}
	if len(other) > 0 {
		t.Errorf("failed requests by kind %v, want connection_lost only", other)
	}
	t.Logf("FIGURES rounds=%d requests=%d connection_lost=%d", writeFailureRounds, len(ids), lost)
}
