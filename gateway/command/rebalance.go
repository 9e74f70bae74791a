package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/control"
)

// rebalanceCommand is `gateway rebalance -count N -rate R`: it asks the gateway on the control
// socket to move N of its sessions away at R per second (GOAWAY REBALANCE), and prints the
// run as JSON (control.RebalanceStatus). Run inside the pod (kubectl exec): the control socket
// is pod-local. A refusal prints `gateway: rebalance refused (<reason>): ...` and exits 3, so
// that a caller tells it from a failure to ask (1) and a bad command line (2).
func rebalanceCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway rebalance", stderr)
	socket := fs.String("socket", config.DefaultControlSocket, "the gateway's control socket (its listen.control)")
	count := fs.Int("count", 0, "how many sessions to move away (required; at most the sessions the pod holds)")
	rate := fs.Int("rate", 0, "GOAWAYs per second (required; 1 to 1000)")
	wait := fs.Bool("wait", false, "return once every GOAWAY went out, not once the rebalance started")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := control.Rebalance(ctx, *socket, *count, *rate, *wait)
	var re *control.RebalanceError
	if errors.As(err, &re) {
		return refusedError{re}
	}
	if err != nil {
		return fmt.Errorf("rebalance: %w", err)
	}
	return json.NewEncoder(stdout).Encode(st)
}

// refusedError is a request the gateway refused with a typed reason (exit status 3).
type refusedError struct{ error }
