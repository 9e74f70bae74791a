package conformance

import (
	"fmt"
	"testing"

	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
	"github.com/tcpgateway/tcpgateway/test/tlstest"
)

// TLS to a gateway with listen.tls, through the load balancer, trusting only the test CA:
// handshake and request work, by address and by an explicit server name; a client that trusts
// another CA fails connect with a transport error.
func tlsScenario(t *testing.T, s *suite) {
	f := StartFleet(t, FleetOptions{TLS: true})
	st := s.connect(t, "", f.Addr(), f.Token("secure"), func(c *wire.Command) { c.TLS = &wire.TLS{CAPEM: string(f.CA.PEM)} })
	r := s.d.MustCall(wire.Command{Op: "request", Service: "echo", Method: "tls", Payload: []byte("sealed")})
	if want := fmt.Sprintf("secure %s /tls: sealed", st.Ack.SessionID); string(r.Response.Payload) != want {
		t.Fatalf("response %q, want %q", r.Response.Payload, want)
	}
	s.connect(t, "named", f.Addr(), f.Token("secure"), func(c *wire.Command) {
		c.TLS = &wire.TLS{CAPEM: string(f.CA.PEM), ServerName: "localhost"}
	})
	other, err := tlstest.NewCA("someone else's CA")
	if err != nil {
		t.Fatal(err)
	}
	res := s.d.Call(wire.Command{Op: "connect", Client: "untrusting", Address: f.Addr(), Token: f.Token("secure"),
		TLS: &wire.TLS{CAPEM: string(other.PEM)}})
	if res.Error == nil || res.Error.Kind != wire.KindTransport {
		t.Fatalf("connect trusting another CA: %s, want a transport error", failureString(res.Error))
	}
}
