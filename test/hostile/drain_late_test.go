package hostile

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// Finding 6: during a drain, connections arriving in the deregistration delay sometimes got
// connection refused instead of GOAWAY, and late arrivals that got GOAWAY were then reset
// (RST) instead of closed: the gateway closed them with the client's HANDSHAKE unread, and
// some mobile stacks drop what they read before a reset. Every connection arriving during
// the deregistration delay (and after it, until the listener closes) must get GOAWAY, then a
// clean FIN.
func TestDrainLateArrivalsGetGoAwayAndFIN(t *testing.T) {
	const (
		clients  = 200
		delay    = 3 * time.Second
		arrivals = delay + time.Second // deregistration delay + spread window
	)
	d := func(v time.Duration) config.Duration { return config.Duration{Duration: v} }
	g := Start(t, Options{Configure: func(c *config.Config) {
		c.Drain = config.Drain{DeregistrationDelay: d(delay), SpreadWindow: d(time.Second), FlushTimeout: d(2 * time.Second), HardDeadline: d(20 * time.Second)}
		c.Logging.Level = "info" // 200 sessions at debug would only add noise
	}})
	token := g.Token("late")

	// The kubelet's preStop hook: `gateway drain -wait` over the pod-local control socket.
	drained := make(chan gwproc.DrainResult, 1)
	go func() { drained <- g.PreStop() }()
	wait.For(t, 5*time.Second, "readiness to fail (the drain started)", func() bool {
		r, err := g.Readyz()
		return err == nil && strings.Contains(r, "draining")
	})

	// The clients arrive evenly over the deregistration delay and the GOAWAY window after it
	// (the listener still accepts then, and answers GOAWAY at once). Each sends its HANDSHAKE
	// at once, then keeps sending PINGs until it reads the end of the connection.
	results := make([]string, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Go(func() {
			time.Sleep(time.Until(start.Add(time.Duration(i) * arrivals / clients))) // arrival schedule
			results[i] = lateClient(g.ClientAddr, SourceAddr(i), token)
		})
	}
	wg.Wait()

	all := map[string]int{}
	for _, r := range results {
		all[r]++
	}
	t.Logf("outcomes: %v", all)
	bad := map[string]int{}
	for _, r := range results {
		if r != "goaway+fin" {
			bad[r]++
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d clients arriving during the deregistration delay did not get GOAWAY then a clean FIN: %v", clients-countOK(results), clients, bad)
	}
	if dr := <-drained; !dr.OK() { // bounded by terminationGracePeriod
		t.Errorf("preStop `gateway drain -wait`: exit %d, %q, %v", dr.ExitCode, dr.Output, dr.Err)
	}
	if code, err := g.WaitExit(30 * time.Second); err != nil || code != 0 {
		t.Errorf("drained gateway: exit %d, %v\n%s", code, err, g.Log.Tail(20))
	}
}

func countOK(results []string) int {
	n := 0
	for _, r := range results {
		if r == "goaway+fin" {
			n++
		}
	}
	return n
}

// lateClient connects from src, sends a HANDSHAKE, then PINGs (a chatty client: bytes keep
// arriving while the gateway closes), and reads until the connection ends.
// It says what happened: "goaway+fin" when a GOAWAY DRAINING came and the close was a FIN.
func lateClient(addr, src, token string) string {
	nc, err := DialFrom(addr, src)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return "refused"
		}
		return "dial: " + err.Error()
	}
	defer nc.Close()
	c := NewConn(nil, nc)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		if c.Write(HandshakeFrame(token)) != nil {
			return
		}
		// A burst right after connecting (what crosses a GOAWAY sent at accept), then a
		// steady trickle (what crosses the close at the end of the drain), so that 200 clients
		// stay light for a loaded machine.
		start := time.Now()
		for n := 0; ; n++ {
			pause := pingSlow
			if time.Since(start) < burst {
				pause = pingFast
			}
			select {
			case <-stop:
				return
			case <-time.After(pause):
			}
			if c.Write(&pb.Frame{Seq: uint64(n + 1), Body: &pb.Frame_Ping{Ping: &pb.Ping{}}}) != nil {
				return
			}
		}
	}()
	goAway := false
	deadline := time.Now().Add(30 * time.Second)
	for range 100000 {
		f, err := c.ReadFrame(time.Until(deadline))
		if err != nil {
			switch {
			case !goAway:
				return "closed without GOAWAY: " + errClass(err)
			case errors.Is(err, syscall.ECONNRESET):
				return "goaway+rst"
			case errors.Is(err, io.EOF):
				return "goaway+fin"
			default:
				return "goaway+" + errClass(err)
			}
		}
		if ga := f.GetGoaway(); ga != nil {
			if ga.Reason != pb.GoAway_REASON_DRAINING {
				return "goaway " + ga.Reason.String()
			}
			goAway = true
		}
	}
	return "too many frames"
}

// The late clients' PINGs: every pingFast for the first burst after connecting, then every
// pingSlow.
const (
	pingFast = 2 * time.Millisecond
	burst    = 100 * time.Millisecond
	pingSlow = 20 * time.Millisecond
)

func errClass(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, io.EOF):
		return "eof"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return fmt.Sprint(err)
}
