// Package command is the gateway binary's command line, so that cmd/gateway stays a thin
// main and the commands are tested in-process:
//
//	gateway [-config PATH]                 run the gateway until SIGTERM or a finished drain
//	gateway drain [-socket PATH] [-wait]   ask the gateway in this pod to drain (preStop hook)
//	gateway sessions -user U [-socket PATH] list this pod's sessions of user U (read-only)
//	gateway rebalance -count N -rate R [-socket PATH] [-wait]
//	                                       move N of this pod's sessions away, R per second
package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// DefaultConfigPath is where the gateway reads its configuration unless -config says otherwise.
const DefaultConfigPath = "/etc/tcpgateway/gateway.yaml"

// exitGuard keeps SIGTERM handled from the first Main to the process's exit. Main's own
// handler is removed when Main returns, and the kubelet sends SIGTERM right after the preStop
// hook returns: arriving between the two, the default action would end a finished drain with
// status 143 (seen in test/drain under load).
var exitGuard sync.Once

// Main runs the command named by args (os.Args[1:]) and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	exitGuard.Do(func() { signal.Notify(make(chan os.Signal, 1), syscall.SIGTERM) })
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch {
	case len(args) > 0 && args[0] == "drain":
		err = drainCommand(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "sessions":
		err = sessionsCommand(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "rebalance":
		err = rebalanceCommand(ctx, args[1:], stdout, stderr)
	default:
		err = gatewayCommand(ctx, args, stderr)
	}
	var usage usageError
	var refused refusedError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &usage):
		return 2 // the flag set printed the problem and the usage
	case errors.As(err, &refused):
		fmt.Fprintln(stderr, "gateway:", err)
		return 3
	default:
		fmt.Fprintln(stderr, "gateway:", err)
		return 1
	}
}

// newFlagSet reports usage errors on stderr and returns them instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// usageError is a command line the flag set refused (exit status 2, as package flag uses).
type usageError struct{ error }

// parse parses args, refusing positional arguments (a mistyped flag must not pass silently).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return nil
}
