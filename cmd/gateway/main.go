// Command gateway is the tcpgateway data plane: it holds client connections and forwards
// their requests to backends. `gateway [-config PATH]` runs it; `gateway drain` asks the
// gateway in the same pod to drain (the preStop hook). See gateway/command.
package main

import (
	"os"

	"github.com/tcpgateway/tcpgateway/gateway/command"
)

func main() {
	os.Exit(command.Main(os.Args[1:], os.Stdout, os.Stderr))
}
