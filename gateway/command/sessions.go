package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/control"
)

// sessionsCommand is `gateway sessions -user U`: for debugging inside the pod (kubectl exec),
// it prints as JSON the sessions of U that the gateway on the control socket holds. It reads
// only; the control socket is pod-local, so nothing of this is reachable from the network.
func sessionsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway sessions", stderr)
	socket := fs.String("socket", config.DefaultControlSocket, "the gateway's control socket (its listen.control)")
	user := fs.String("user", "", "the user id whose sessions to list (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *user == "" {
		fmt.Fprintln(stderr, "-user is required")
		fs.Usage()
		return usageError{fmt.Errorf("-user is required")}
	}
	list, err := control.Sessions(ctx, *socket, *user)
	if err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(list)
}
