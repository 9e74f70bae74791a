package command

import (
	"context"
	"fmt"
	"io"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/control"
)

// drainCommand is `gateway drain`: it asks the gateway on the control socket to drain. The
// preStop hook runs it with -wait, so that the hook (and the kubelet's SIGTERM after it) waits
// for the drain; the kubelet bounds the hook by terminationGracePeriodSeconds. SIGTERM or an
// interrupt (ctx) stops the wait, not the drain.
func drainCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway drain", stderr)
	socket := fs.String("socket", config.DefaultControlSocket, "the gateway's control socket (its listen.control)")
	wait := fs.Bool("wait", false, "return once the drain finished, not once it started")
	if err := parse(fs, args); err != nil {
		return err
	}
	answer, err := control.Drain(ctx, *socket, *wait)
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	fmt.Fprintln(stdout, answer)
	return nil
}
