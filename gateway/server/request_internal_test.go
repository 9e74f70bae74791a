package server

import (
	"testing"

	"github.com/tcpgateway/tcpgateway/gateway/uplink"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
)

// Every uplink outcome has a wire code of the same name.
func TestEveryUplinkCodeHasAWireCode(t *testing.T) {
	for _, code := range uplink.Codes() {
		wire, ok := codeToProto[code]
		if !ok {
			t.Errorf("no wire code for %q", code)
			continue
		}
		if got := protocol.Reason(wire); got != string(code) {
			t.Errorf("%q maps to %q", code, got)
		}
	}
}
