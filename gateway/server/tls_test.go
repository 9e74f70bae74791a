package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/tlstest"
)

// tlsHarness is a harness whose clients listener speaks TLS with a certificate (serial 1)
// from a Secret-like directory.
type tlsHarness struct {
	*harness
	ca  *tlstest.CA
	dir *tlstest.SecretDir
}

func startTLS(t testing.TB, mutate func(*config.Config)) *tlsHarness {
	t.Helper()
	ca, dir := tlstest.Serving(t, "tcpgateway test CA")
	h := start(t, nil, func(c *config.Config) {
		c.Listen.TLS = &config.ListenTLS{CertFile: dir.CertFile(), KeyFile: dir.KeyFile()}
		if mutate != nil {
			mutate(c)
		}
	})
	return &tlsHarness{harness: h, ca: ca, dir: dir}
}

func (h *tlsHarness) connectTLS(user string) *client.Client {
	h.t.Helper()
	return h.connect(user, "", func(o *client.Options) { o.TLS = h.ca.ClientConfig() })
}

// rawTLS is a raw protocol client over TLS; it returns the server's leaf certificate too.
func (h *tlsHarness) rawTLS() (*raw, int64) {
	h.t.Helper()
	d := &net.Dialer{Timeout: wait}
	tc, err := tls.DialWithDialer(d, "tcp", h.addr, h.ca.ClientConfig())
	if err != nil {
		h.t.Fatalf("TLS dial: %v", err)
	}
	h.t.Cleanup(func() { tc.Close() })
	return &raw{t: h.t, nc: tc, r: bufio.NewReader(tc)}, tc.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// serial dials a new TLS connection and returns the serial of the certificate it was served.
func (h *tlsHarness) serial() int64 {
	h.t.Helper()
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: wait}, "tcp", h.addr, h.ca.ClientConfig())
	if err != nil {
		h.t.Fatalf("TLS dial: %v", err)
	}
	defer tc.Close()
	return tc.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// A session over TLS works as over plaintext: handshake, request to a backend, heartbeat; the
// gateway's frame limits apply the same way.
func TestTLSSession(t *testing.T) {
	h := startTLS(t, nil)
	c := h.connectTLS("alice")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := c.Request(ctx, "echo", "say", []byte("over tls"))
	if err != nil || string(resp.Payload) != "over tls" || resp.Headers["user"] != "alice" {
		t.Fatalf("request over TLS: %v, %+v", err, resp)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping over TLS: %v", err)
	}
	if got := counter(h.m.TLSHandshakes.WithLabelValues("ok")); got != 1 {
		t.Errorf("tls handshakes ok = %v, want 1", got)
	}

	// Before the handshake, the handshake frame limit (8 KiB by default).
	r, _ := h.rawTLS()
	r.writeBytes([]byte{0, 1, 0, 0}) // 65536 bytes announced
	r.expectError(pb.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE)

	// A plaintext client of the same gateway is refused.
	opts := client.Options{Addr: h.addr, Token: h.token("bob"), NoReconnect: true, HandshakeTimeout: wait}
	if _, err := client.Connect(ctx, opts); err == nil {
		t.Fatal("a plaintext client connected to the TLS listener")
	}
}

// A plaintext client of a TLS listener is told so in plaintext (a fatal ERROR BAD_FRAME),
// closed at once and counted.
func TestTLSPlaintextClientRefused(t *testing.T) {
	h := startTLS(t, nil)
	r := h.raw()
	r.send(&pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{ProtocolVersion: 2, Token: h.token("eve")}}})
	start := time.Now()
	f := r.read()
	if e := f.GetError(); e == nil || e.Code != pb.ErrorCode_ERROR_CODE_BAD_FRAME || !e.Fatal || !strings.Contains(e.Message, "speaks TLS") {
		t.Fatalf("a plaintext client got %v, want a fatal ERROR BAD_FRAME saying the port speaks TLS", f)
	}
	r.expectClosed()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("closed after %v: should be at once", took)
	}
	eventually(t, "not_tls counted and the connection closed", func() bool {
		return counter(h.m.TLSHandshakes.WithLabelValues("not_tls")) == 1 &&
			counter(h.m.Closes.WithLabelValues("tls_failed")) == 1 && h.srv.Connections() == 0
	})

	// The SDK without TLS reports the gateway's reason.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := client.Connect(ctx, client.Options{Addr: h.addr, Token: h.token("bob"), NoReconnect: true})
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != pb.ErrorCode_ERROR_CODE_BAD_FRAME {
		t.Fatalf("plaintext SDK connect: %v, want ServerError BAD_FRAME", err)
	}
}

// The hostile slow TLS handshake: clients that open TCP and never finish TLS (silent, or a
// record header and then nothing) count against limits.maxPendingHandshakes and the
// per-address limit like silent plaintext clients, and are closed at the handshake deadline.
func TestTLSSlowHandshakeClosedAtDeadlineAndCounted(t *testing.T) {
	const timeout = time.Second
	h := startTLS(t, func(c *config.Config) {
		c.Limits.HandshakeTimeout = config.Duration{Duration: timeout}
		c.Limits.MaxPendingHandshakes = 2
		c.Limits.PerAddress.MaxConnections = 2
	})
	silent := h.raw()
	partial := h.raw()
	partial.writeBytes([]byte{22, 3, 1, 0, 200}) // a ClientHello record header, then nothing
	eventually(t, "both pending", func() bool { return counter(h.m.PendingHandshakes) == 2 })

	// A third is refused without a TLS handshake: closed at once.
	third := h.raw()
	third.writeBytes([]byte{22, 3, 1, 0, 200})
	third.expectClosed()
	eventually(t, "the third refused", func() bool {
		return counter(h.m.ConnectionsRefused.WithLabelValues("pending_handshakes")) == 1
	})

	// The two are closed at the deadline, not before.
	opened := time.Now()
	for _, r := range []*raw{silent, partial} {
		_ = r.nc.SetReadDeadline(time.Now().Add(wait))
		if _, err := r.r.ReadByte(); err == nil {
			t.Fatal("a slow TLS client was sent data")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("a slow TLS client was not closed")
		}
	}
	if took := time.Since(opened); took > timeout+time.Second {
		t.Errorf("closed %v after the third connection, want about %v", took, timeout)
	}
	eventually(t, "timeouts counted, nothing pending", func() bool {
		return counter(h.m.TLSHandshakes.WithLabelValues("timeout")) == 2 &&
			counter(h.m.Handshakes.WithLabelValues("handshake_timeout")) == 2 &&
			counter(h.m.Closes.WithLabelValues("handshake_timeout")) == 2 &&
			counter(h.m.PendingHandshakes) == 0 && h.srv.Connections() == 0
	})

	// The per-address limit (2) counts TLS connections too, established or pending: with one
	// of each from 127.0.0.1, a third is refused without a TLS handshake.
	c := h.connectTLS("alice")
	defer c.Close()
	pending := h.raw()
	defer pending.nc.Close()
	over := h.raw()
	over.expectClosed()
	eventually(t, "the address limit refused the third", func() bool {
		return counter(h.m.AddressLimited.WithLabelValues("connections")) == 1
	})
}

// Certificate rotation: live TLS sessions keep working, new connections get the new
// certificate, and a new pair that does not load keeps the previous one in service.
func TestTLSCertificateRotation(t *testing.T) {
	h := startTLS(t, nil)
	c := h.connectTLS("alice")
	live, serial := h.rawTLS()
	if serial != 1 {
		t.Fatalf("served serial %d, want 1", serial)
	}
	live.handshake(h.token("bob"))

	next, err := h.ca.Issue(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.dir.Write(next.CertPEM, next.KeyPEM); err != nil {
		t.Fatal(err)
	}
	// The files are checked at most once a second, on a handshake: poll with new connections.
	eventually(t, "new connections served certificate 2", func() bool { return h.serial() == 2 })
	if got := counter(h.m.CertReloads.WithLabelValues("ok")); got != 1 {
		t.Errorf("reloads ok = %v, want 1", got)
	}
	if got := counter(h.m.CertNotAfter.WithLabelValues(h.dir.CertFile())); got != float64(next.Leaf.NotAfter.Unix()) {
		t.Errorf("not_after gauge %v, want %d", got, next.Leaf.NotAfter.Unix())
	}

	// The sessions opened before the rotation go on.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if resp, err := c.Request(ctx, "echo", "after", []byte("rotation")); err != nil || string(resp.Payload) != "rotation" {
		t.Fatalf("request on a session from before the rotation: %v %+v", err, resp)
	}
	live.send(&pb.Frame{Seq: 7, Body: &pb.Frame_Ping{Ping: &pb.Ping{ClientTimeMs: 1}}})
	if f := live.read(); f.GetPong() == nil || f.Seq != 7 {
		t.Fatalf("ping on a raw session from before the rotation: %v", f)
	}

	// A broken rotation (certificate 3 with the key of certificate 2) keeps certificate 2.
	bad, err := h.ca.Issue(3)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.dir.Write(bad.CertPEM, next.KeyPEM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the broken pair refused", func() bool {
		h.serial() // a handshake triggers the check
		return counter(h.m.CertReloads.WithLabelValues("failed")) == 1
	})
	if got := h.serial(); got != 2 {
		t.Fatalf("after a broken rotation served serial %d, want 2 (the previous pair)", got)
	}
	// Garbage after it is refused too, once; then a good pair is taken.
	if err := h.dir.Write([]byte("not pem"), []byte("not pem")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "garbage refused", func() bool {
		h.serial()
		return counter(h.m.CertReloads.WithLabelValues("failed")) == 2
	})
	fixed, err := h.ca.Issue(4)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.dir.Write(fixed.CertPEM, fixed.KeyPEM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the fixed pair served", func() bool { return h.serial() == 4 })
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after the rotations: %v", err)
	}
}

// Drain: TLS sessions are told GOAWAY like the others, and the listener stops accepting.
func TestTLSDrainSendsGoAway(t *testing.T) {
	h := startTLS(t, nil)
	r, _ := h.rawTLS()
	r.handshake(h.token("alice"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = h.srv.Shutdown(ctx)
	}()
	f := r.read()
	if g := f.GetGoaway(); g == nil || g.Reason != pb.GoAway_REASON_DRAINING || g.ResumeToken == "" {
		t.Fatalf("got %v, want GOAWAY DRAINING with a resume token", f)
	}
	r.nc.Close() // as the SDK does when it has nothing pending
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Shutdown did not return")
	}
	if _, err := net.DialTimeout("tcp", h.addr, wait); err == nil {
		t.Error("the TLS listener still accepts after Shutdown")
	}
}

// A TLS client that goes away mid-session ends its session.
func TestTLSClientGoneMidSession(t *testing.T) {
	h := startTLS(t, nil)
	r, _ := h.rawTLS()
	r.handshake(h.token("alice"))
	eventually(t, "one session", func() bool { return h.srv.Sessions().Len() == 1 })
	r.nc.Close()
	eventually(t, "the session closed as client_closed", func() bool {
		return h.srv.Sessions().Len() == 0 && h.srv.Connections() == 0 &&
			counter(h.m.Closes.WithLabelValues("client_closed")) == 1
	})
}
