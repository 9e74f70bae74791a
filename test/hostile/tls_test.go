package hostile

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/tlstest"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// tlsGateway is a gateway process whose clients listener speaks TLS (listen.tls) with a
// certificate of serial 1 from a directory laid out as a mounted kubernetes.io/tls Secret.
type tlsGateway struct {
	*Gateway
	ca  *tlstest.CA
	dir *tlstest.SecretDir
}

func startTLS(t *testing.T, o Options) *tlsGateway {
	t.Helper()
	ca, dir := tlstest.Serving(t, "tcpgateway hostile CA")
	configure := o.Configure
	o.Configure = func(c *config.Config) {
		c.Listen.TLS = &config.ListenTLS{CertFile: dir.CertFile(), KeyFile: dir.KeyFile(), MinVersion: config.TLS12}
		if configure != nil {
			configure(c)
		}
	}
	return &tlsGateway{Gateway: Start(t, o), ca: ca, dir: dir}
}

// dialTLS opens a raw protocol connection over TLS and returns the serial of the certificate
// the gateway served.
func (g *tlsGateway) dialTLS() (*Conn, int64) {
	g.t.Helper()
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: ReadTimeout}, "tcp", g.ClientAddr, g.ca.ClientConfig())
	if err != nil {
		g.t.Fatalf("TLS dial: %v", err)
	}
	c := NewConn(g.t, tc)
	g.t.Cleanup(c.Close)
	return c, tc.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// servedSerial is the serial of the certificate a new TLS connection is served.
func (g *tlsGateway) servedSerial() int64 {
	g.t.Helper()
	c, serial := g.dialTLS()
	c.Close()
	return serial
}

func (g *tlsGateway) sdk(t *testing.T, user string, onPush func(*client.Push)) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ReadTimeout)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{Addr: g.ClientAddr, Token: g.Token(user), NoReconnect: true,
		TLS: g.ca.ClientConfig(), OnPush: onPush})
	if err != nil {
		t.Fatalf("TLS connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// A TLS client session end to end against a gateway process: handshake, a request to a
// backend, a push from Kafka; then the certificate rotates under live sessions, which keep
// exchanging frames, while new connections get the new certificate; a broken pair keeps the
// previous one.
func TestTLSSessionRequestPushAndRotation(t *testing.T) {
	g := startTLS(t, Options{Kafka: true, Partitions: 1})
	pushes := make(chan *client.Push, 4)
	c := g.sdk(t, "alice", func(p *client.Push) { pushes <- p })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.Request(ctx, "echo", "hello", []byte("over tls"))
	if err != nil || string(resp.Payload) != "alice "+c.SessionID()+" /hello: over tls" {
		t.Fatalf("request over TLS: %v %+v", err, resp)
	}
	p := publisher(t, g.Gateway)
	if _, err := p.Push(ctx, push.Message{ID: "tls-1", Target: push.User("alice"), Payload: []byte("pushed")}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-pushes:
		if got.MessageId != "tls-1" || string(got.Payload) != "pushed" {
			t.Fatalf("push %v", got)
		}
	case <-ctx.Done():
		t.Fatal("no push over TLS")
	}

	raw, serial := g.dialTLS()
	if serial != 1 {
		t.Fatalf("served serial %d, want 1", serial)
	}
	raw.Handshake(g.Token("bob"), nil)

	// Rotate, as the kubelet does: the new pair appears at once behind the same paths.
	next, err := g.ca.Issue(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.dir.Write(next.CertPEM, next.KeyPEM); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "a new connection served certificate 2", func() bool { return g.servedSerial() == 2 })
	if got := g.Metric("tcpgw_tls_certificate_reloads_total", "result", "ok"); got != 1 {
		t.Errorf("reloads ok = %v, want 1", got)
	}

	// The live sessions keep exchanging frames on their old TLS sessions.
	resp, err = c.Request(ctx, "echo", "after", []byte("rotation"))
	if err != nil || string(resp.Payload) != "alice "+c.SessionID()+" /after: rotation" {
		t.Fatalf("request after the rotation: %v %+v", err, resp)
	}
	if _, err := p.Push(ctx, push.Message{ID: "tls-2", Target: push.User("alice"), Payload: []byte("again")}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-pushes:
		if got.MessageId != "tls-2" {
			t.Fatalf("push %v", got)
		}
	case <-ctx.Done():
		t.Fatal("no push after the rotation")
	}
	raw.Send(&pb.Frame{Seq: 9, Body: &pb.Frame_Ping{Ping: &pb.Ping{}}})
	if f := raw.Read(); f.GetPong() == nil || f.Seq != 9 {
		t.Fatalf("ping after the rotation: %s", describe(f))
	}

	// A broken rotation (certificate 3 with certificate 2's key) keeps certificate 2.
	bad, err := g.ca.Issue(3)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.dir.Write(bad.CertPEM, next.KeyPEM); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "the broken pair refused", func() bool {
		g.servedSerial() // a handshake makes the gateway check the files
		return g.Metric("tcpgw_tls_certificate_reloads_total", "result", "failed") == 1
	})
	if got := g.servedSerial(); got != 2 {
		t.Fatalf("after a broken rotation served serial %d, want 2", got)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after the broken rotation: %v", err)
	}
}

// A plaintext client of the TLS port is refused cleanly: told in plaintext (a fatal ERROR
// BAD_FRAME saying the port speaks TLS), then a FIN, at once; counted as not_tls.
func TestTLSPortRefusesPlaintext(t *testing.T) {
	g := startTLS(t, Options{})
	c := g.Dial()
	c.Send(HandshakeFrame(g.Token("eve")))
	start := time.Now()
	if e := c.ExpectError(pb.ErrorCode_ERROR_CODE_BAD_FRAME); !strings.Contains(e.Message, "speaks TLS") {
		t.Errorf("ERROR message %q, want it to say the port speaks TLS", e.Message)
	}
	c.ExpectClosed()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("closed after %v, want at once", took)
	}
	wait.For(t, 5*time.Second, "not_tls counted", func() bool {
		return g.Metric("tcpgw_tls_handshakes_total", "result", "not_tls") == 1 &&
			g.Metric("tcpgw_connections") == 0
	})
	// A TLS client is unaffected.
	tc, _ := g.dialTLS()
	if ack := tc.Handshake(g.Token("alice"), nil); ack.UserId != "alice" {
		t.Errorf("ack for %q", ack.UserId)
	}
}

// The slow TLS handshake attack: clients open TCP and never finish TLS (silent, or a record
// header and then nothing). They count against limits.maxPendingHandshakes and the
// per-address limit like silent plaintext clients (one more is refused, at once and without a
// TLS handshake), and they are closed at limits.handshakeTimeout and counted.
func TestTLSSlowHandshakeAttack(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	const pending = 4
	g := startTLS(t, Options{Configure: func(c *config.Config) {
		c.Limits.HandshakeTimeout = config.Duration{Duration: timeout}
		c.Limits.MaxPendingHandshakes = pending
	}})
	var slow []*Conn
	for i := range pending {
		c := g.Dial()
		if i%2 == 1 {
			c.SendRaw([]byte{22, 3, 1, 2, 0}) // a 512-byte ClientHello announced, never sent
		}
		slow = append(slow, c)
	}
	opened := time.Now()
	wait.For(t, 5*time.Second, "the slow clients pending", func() bool {
		return g.Metric("tcpgw_pending_handshakes") == pending
	})
	refused := g.Dial()
	refused.SendRaw([]byte{22, 3, 1, 2, 0})
	if err := refused.ReadClose(ReadTimeout); err != nil && time.Since(opened) > timeout {
		t.Fatalf("the connection beyond maxPendingHandshakes: %v", err)
	}
	if took := time.Since(opened); took >= timeout {
		t.Errorf("the connection beyond the bound closed after %v: should be at once", took)
	}
	for _, c := range slow {
		_, err := c.ReadFrame(ReadTimeout)
		if ne, ok := err.(net.Error); err == nil || (ok && ne.Timeout()) {
			t.Fatalf("a slow TLS client was not closed: %v", err)
		}
	}
	if took := time.Since(opened); took < timeout-250*time.Millisecond || took > timeout+2*time.Second {
		t.Errorf("slow clients closed after %v, want about %v", took, timeout)
	}
	wait.For(t, 5*time.Second, "the attack counted", func() bool {
		m, err := g.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		return m.Value("tcpgw_tls_handshakes_total", "result", "timeout") == pending &&
			m.Value("tcpgw_handshakes_total", "result", "handshake_timeout") == pending &&
			m.Value("tcpgw_connections_refused_total", "reason", "pending_handshakes") == 1 &&
			m.Value("tcpgw_pending_handshakes") == 0 && m.Value("tcpgw_connections") == 0
	})
	// The gateway serves TLS clients afterwards.
	c, _ := g.dialTLS()
	if ack := c.Handshake(g.Token("alice"), nil); ack.UserId != "alice" {
		t.Errorf("ack for %q", ack.UserId)
	}
}
