package traffic

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Talkers send echo requests: every request must get a response.
type Talkers struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	codes  map[pb.ErrorCode]int
	wrong  []string     // responses that do not echo the request
	failed []FailedTalk // requests that got no response
}

// FailedTalk is a request that got no response.
type FailedTalk struct {
	ac         *App
	sent, done time.Time
	err        error
}

// maxTalks bounds each talker's loop besides its stop channel.
const maxTalks = 100000

// StartTalkers makes each client send an echo request every interval until halted.
func StartTalkers(t testing.TB, clients []*App, interval time.Duration) *Talkers {
	tk := &Talkers{stop: make(chan struct{}), codes: map[pb.ErrorCode]int{}}
	for _, ac := range clients {
		tk.wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for n := range maxTalks {
				select {
				case <-tk.stop:
					return
				case <-tick.C:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				payload := fmt.Sprintf("%s #%d", ac.User, n)
				sent := time.Now()
				resp, err := ac.Client().Request(ctx, "echo", "ping", []byte(payload))
				cancel()
				tk.record(ac, payload, sent, resp, err)
			}
		})
	}
	t.Cleanup(tk.Halt)
	return tk
}

func (tk *Talkers) record(ac *App, payload string, sent time.Time, resp *pb.Response, err error) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if err != nil {
		tk.failed = append(tk.failed, FailedTalk{ac, sent, time.Now(), err})
		return
	}
	tk.codes[resp.GetCode()]++
	if resp.GetCode() == pb.ErrorCode_ERROR_CODE_OK && !strings.Contains(string(resp.GetPayload()), payload) && len(tk.wrong) < 5 {
		tk.wrong = append(tk.wrong, fmt.Sprintf("client %d: response %q does not echo %q", ac.Index, resp.GetPayload(), payload))
	}
}

// halt stops the Talkers and waits for their last requests (bounded by their timeout).
func (tk *Talkers) Halt() {
	select {
	case <-tk.stop:
		return
	default:
	}
	close(tk.stop)
	tk.wg.Wait()
}

// Check asserts that every request got a response from the backend that echoes it (a
// request the gateway answered DRAINING is resent by the SDK on its next connection, so the
// app sees only backends' answers); it returns how many were answered.
func (tk *Talkers) Check(t testing.TB, t0 time.Time) (answered int) {
	t.Helper()
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if len(tk.wrong) > 0 {
		t.Errorf("wrong echo responses: %s", strings.Join(tk.wrong, "; "))
	}
	for _, ft := range tk.failed {
		conns, discs := ft.ac.Events()
		t.Errorf("client %d: echo request sent at t0%+.4fs failed at t0%+.4fs: %v; %s", ft.ac.Index,
			ft.sent.Sub(t0).Seconds(), ft.done.Sub(t0).Seconds(), ft.err, History(conns, discs, t0))
	}
	for code, n := range tk.codes {
		answered += n
		if code != pb.ErrorCode_ERROR_CODE_OK {
			t.Errorf("%d echo requests answered %s", n, code)
		}
	}
	return answered
}

// Summary counts the responses by code and the requests without one.
func (tk *Talkers) Summary() string {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return fmt.Sprintf("%v, %d without response", tk.codes, len(tk.failed))
}
