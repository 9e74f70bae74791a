// Package sdkdriver starts an SDK's conformance driver (test/conformance/DRIVER.md: a line-
// oriented JSON protocol on stdin/stdout, one process holding any number of named clients)
// and gives its events to Go tests: the conformance suite (test/conformance) and the
// mixed-language drain test (test/drain).
package sdkdriver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/repo"
)

// Bounds of the harness's waits on a driver.
const (
	readyTimeout = 30 * time.Second // a driver process until its ready event (a JVM starts slowly)
	// EventTimeout is the default wait for an awaited event.
	EventTimeout = 15 * time.Second
)

// Received is an event and when the harness read it.
type Received struct {
	wire.Event
	At time.Time
}

// Driver is one driver process: commands go to its stdin, events come from its stdout.
type Driver struct {
	t       testing.TB
	Name    string
	Caps    map[string]bool
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	onEvent func(Received)
	Log     *gwproc.Log // the driver's stderr

	wmu    sync.Mutex // serialises command lines
	nextID int64

	mu      sync.Mutex // guards events, changed, exited
	events  []Received
	changed chan struct{} // closed and replaced on every new event
	exited  bool
}

// Options are the hooks of a driver process.
type Options struct {
	// OnEvent, if set, sees every event as it is read, in order, on the reading goroutine
	// (before waiters do): it must not block.
	OnEvent func(Received)
}

// Start runs argv (from the repository root) as a driver and waits for its ready event. It
// is stopped (stdin closed, then killed after a grace period) when the test ends.
func Start(t testing.TB, argv []string, o Options) *Driver {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = root
	// Its own process group, so that a driver run through sh is stopped with its children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d := &Driver{t: t, onEvent: o.OnEvent, cmd: cmd, Log: &gwproc.Log{}, changed: make(chan struct{}), Caps: map[string]bool{}}
	cmd.Stderr = d.Log
	if d.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the driver %q: %v", argv, err)
	}
	exited := make(chan struct{})
	go d.read(stdout, exited)
	t.Cleanup(func() {
		_ = d.stdin.Close() // a driver exits at the end of its input
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("driver stderr (last lines):\n%s", d.Log.Tail(40))
		}
	})
	ready := d.WaitEvent(0, readyTimeout, "the driver's ready event", func(e Received) bool { return e.Event.Event == "ready" })
	d.Name = ready.Driver
	for _, c := range ready.Capabilities {
		d.Caps[c] = true
	}
	return d
}

// Require skips the test unless the driver has capability c.
func (d *Driver) Require(c string) {
	d.t.Helper()
	if !d.Caps[c] {
		d.t.Skipf("the %s driver lacks capability %q", d.Name, c)
	}
}

func (d *Driver) read(stdout io.Reader, exited chan struct{}) {
	defer close(exited)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e wire.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			_, _ = fmt.Fprintf(d.Log, "harness: not an event: %q: %v\n", sc.Text(), err)
			continue
		}
		r := Received{Event: e, At: time.Now()}
		if d.onEvent != nil {
			d.onEvent(r)
		}
		d.mu.Lock()
		d.events = append(d.events, r)
		close(d.changed)
		d.changed = make(chan struct{})
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.exited = true
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// Mark is the index of the next event: WaitEvent(Mark(), ...) sees only later events.
func (d *Driver) Mark() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.events)
}

// Events are the events from index from on.
func (d *Driver) Events(from int) []Received {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Received(nil), d.events[min(from, len(d.events)):]...)
}

// Find is the first event from index from that matches, if any.
func (d *Driver) Find(from int, match func(Received) bool) (Received, bool) {
	for _, e := range d.Events(from) {
		if match(e) {
			return e, true
		}
	}
	return Received{}, false
}

// WaitEvent waits at most timeout for an event from index from that matches.
func (d *Driver) WaitEvent(from int, timeout time.Duration, what string, match func(Received) bool) Received {
	d.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		for _, e := range d.events[min(from, len(d.events)):] {
			if match(e) {
				d.mu.Unlock()
				return e
			}
		}
		changed, exited := d.changed, d.exited
		d.mu.Unlock()
		if exited {
			d.t.Fatalf("waiting for %s: the driver exited\n%s", what, d.Log.Tail(30))
		}
		select {
		case <-changed:
		case <-deadline.C:
			d.t.Fatalf("no %s within %v; events since: %s", what, timeout, Describe(d.Events(from)))
		}
	}
}

// Send writes a command and returns its id.
func (d *Driver) Send(c wire.Command) int64 {
	d.t.Helper()
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.nextID++
	c.ID = d.nextID
	b, err := json.Marshal(c)
	if err != nil {
		d.t.Fatal(err)
	}
	if _, err := d.stdin.Write(append(b, '\n')); err != nil {
		d.t.Fatalf("writing a command to the driver: %v", err)
	}
	return c.ID
}

// Result waits for the result of command id (within the command's own deadline plus a margin).
func (d *Driver) Result(id int64, timeout time.Duration) Received {
	d.t.Helper()
	return d.WaitEvent(0, timeout, fmt.Sprintf("result of command %d", id), func(e Received) bool {
		return e.Event.Event == "result" && e.ID == id
	})
}

// Call sends a command and waits for its result.
func (d *Driver) Call(c wire.Command) Received {
	d.t.Helper()
	wait := EventTimeout
	if c.DeadlineMs > 0 {
		wait = time.Duration(c.DeadlineMs)*time.Millisecond + 5*time.Second
	}
	return d.Result(d.Send(c), wait)
}

// MustCall is Call failing the test on an error result.
func (d *Driver) MustCall(c wire.Command) Received {
	d.t.Helper()
	r := d.Call(c)
	if r.Error != nil {
		d.t.Fatalf("%s (client %q): %s", c.Op, c.Client, FailureString(r.Error))
	}
	return r
}

// Pushes are the push events of client from index from, in order.
func (d *Driver) Pushes(from int, client string) []*wire.Push {
	var out []*wire.Push
	for _, e := range d.Events(from) {
		if e.Event.Event == "push" && e.Client == clientName(client) {
			out = append(out, e.Push)
		}
	}
	return out
}

// IsState matches a state event of client.
func IsState(client, state string) func(Received) bool {
	return func(e Received) bool {
		return e.Event.Event == "state" && e.Client == clientName(client) && e.State == state
	}
}

// IsPush matches the push of client with message id.
func IsPush(client, messageID string) func(Received) bool {
	return func(e Received) bool {
		return e.Event.Event == "push" && e.Client == clientName(client) && e.Push != nil && e.Push.MessageID == messageID
	}
}

func clientName(c string) string {
	if c == "" {
		return "c"
	}
	return c
}

// FailureString renders a failure for test messages.
func FailureString(f *wire.Failure) string {
	if f == nil {
		return "<nil>"
	}
	b, _ := json.Marshal(f)
	return string(b)
}

// Describe lists events compactly for failure messages (the last 30).
func Describe(es []Received) string {
	if len(es) > 30 {
		es = es[len(es)-30:]
	}
	var b strings.Builder
	for _, e := range es {
		if e.Push != nil {
			p := *e.Push
			p.Payload = nil
			e.Push = &p
		}
		j, _ := json.Marshal(e.Event)
		b.WriteString("\n  ")
		b.Write(j)
	}
	return b.String()
}
