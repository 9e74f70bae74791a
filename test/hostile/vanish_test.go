package hostile

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Found by FuzzHandshake: a client that sends a HANDSHAKE (or anything the gateway answers)
// and vanishes at once could crash the whole gateway. The session's writer appended the
// answer to the connection's buffer while netpoll, seeing the peer gone, freed that buffer:
// a nil dereference in netpoll, the process dies with every client on it. Here a few
// thousand clients do exactly that, some closing with FIN, some with RST; the gateway must
// still be alive and serving afterwards.
func TestClientVanishingAfterHandshakeDoesNotCrashGateway(t *testing.T) {
	g := Start(t, Options{})
	// A HANDSHAKE and PINGs (each answered, so the gateway is writing when the client
	// vanishes), in one write.
	wire, err := protocol.Append(nil, HandshakeFrame(g.Token("vanisher")), 1<<20)
	for i := range 20 {
		if err == nil {
			wire, err = protocol.Append(wire, &pb.Frame{Seq: uint64(i + 1), Body: &pb.Frame_Ping{Ping: &pb.Ping{}}}, 1<<20)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 800
	deadline := time.Now().Add(2 * time.Minute) // bounds the attack on a slow machine
	var wg sync.WaitGroup
	var sent atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < each && time.Now().Before(deadline) && !g.Exited(); i++ {
				// Each from its own source address: this is not about per-address limits.
				nc, err := DialFrom(g.ClientAddr, SourceAddr(w*each+i))
				if err != nil {
					continue // counted below: the gateway must still be up
				}
				if (w+i)%2 == 0 {
					_ = nc.(*net.TCPConn).SetLinger(0) // close with RST
				}
				if _, err := nc.Write(wire); err == nil {
					sent.Add(1)
				}
				_ = nc.Close()
			}
		})
	}
	wg.Wait()
	if g.Exited() {
		t.Fatalf("the gateway died (%v):\n%s", g.WaitErr, g.Log.Tail(40))
	}
	if n := sent.Load(); n < workers*each/2 {
		t.Fatalf("only %d of %d attack connections got their bytes out", n, workers*each)
	}
	// From another address: 127.0.0.1 spent its handshake bucket (limits.perAddress) on the
	// attack, whose later handshakes were answered ERROR ADDRESS_LIMIT (vanishing as well).
	c := g.dialFrom("127.0.0.7")
	if ack := c.Handshake(g.Token("survivor"), nil); ack.UserId != "survivor" {
		t.Errorf("handshake after the attack: user %q", ack.UserId)
	}
}
