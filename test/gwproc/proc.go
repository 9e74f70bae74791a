package gwproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is a child process with its output kept in Log.
type Proc struct {
	Name     string
	Cmd      *exec.Cmd
	Log      *Log
	done     chan struct{} // closed when the process exited and was reaped
	WaitErr  error         // valid after Done
	ExitedAt time.Time     // valid after Done
}

// Start runs bin; the process is SIGKILLed when the test ends (cleanup) or the test binary
// dies. A data race the child reports fails the test.
func Start(t testing.TB, name, bin string, args ...string) (*Proc, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = childEnv()
	dieWithParent(cmd)
	p := &Proc{Name: name, Cmd: cmd, Log: newLog(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Log, p.Log
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.WaitErr = cmd.Wait()
		p.ExitedAt = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done // bounded: SIGKILL, then WaitDelay
		if p.Log.Races() > 0 {
			t.Errorf("%s reported a data race:\n%s", name, p.Log.Tail(200))
		}
	})
	return p, nil
}

// childEnv is the test's environment without the variables that would override the
// generated configuration (gateway/config's environment overrides).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "POD_NAME", "TCPGW_SERVER_ID", "TCPGW_LISTEN_CLIENTS", "TCPGW_LISTEN_ADMIN", "TCPGW_LISTEN_CONTROL", "TCPGW_KAFKA_BROKERS":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Done is closed once the process exited and was reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig; a process that already exited is not an error.
func (p *Proc) Signal(sig os.Signal) error {
	err := p.Cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// WaitExit waits at most limit for the process to end and returns its exit code (-1 when
// killed by a signal).
func (p *Proc) WaitExit(limit time.Duration) (int, error) {
	select {
	case <-p.done:
		return p.Cmd.ProcessState.ExitCode(), nil
	case <-time.After(limit):
		return 0, fmt.Errorf("%s still running after %s", p.Name, limit)
	}
}
