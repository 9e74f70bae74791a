package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/tlstest"
)

// The Go SDK's own WebSocket transport (Options.Addr a ws:// URL, no DialContext) against the
// gateway: a session with a request and a ping; the app's close is the gateway's
// client_closed; a refused token is the ERROR's cause, not the close after it.
func TestSDKOverWebSocket(t *testing.T) {
	h := startWS(t, func(c *config.Config) {
		// An Origin list: the SDK, not a browser, sends none and is let in (docs/protocol.md).
		c.Listen.WebSocket.AllowedOrigins = []string{"https://app.example.com"}
	})
	c := h.connect("alice", "", func(o *client.Options) { o.Addr = h.url() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := c.Request(ctx, "echo", "say", []byte("over ws://"))
	if err != nil || string(resp.Payload) != "over ws://" || resp.Headers["user"] != "alice" {
		t.Fatalf("request over ws://: %v, %+v", err, resp)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping over ws://: %v", err)
	}
	eventually(t, "one upgrade counted", func() bool { return counter(h.m.WebSocketUpgrades.WithLabelValues("ok")) == 1 })
	_ = c.Close()
	eventually(t, "the app's close counted as client_closed", func() bool {
		return counter(h.m.Closes.WithLabelValues("client_closed")) == 1
	})

	_, err = client.Connect(ctx, client.Options{Addr: h.url(), Token: "not a token", NoReconnect: true})
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED {
		t.Fatalf("Connect with a bad token: %v, want ServerError UNAUTHENTICATED", err)
	}
	_, err = client.Connect(ctx, client.Options{Addr: "ws://" + h.wsAddr + "/elsewhere", Token: h.token("bob"), NoReconnect: true})
	var ue *client.WebSocketUpgradeError
	if !errors.As(err, &ue) || ue.Status != 404 {
		t.Fatalf("Connect at another path: %v, want WebSocketUpgradeError 404", err)
	}
}

// wss:// (listen.websocket.tls) with Options.TLS trusting the gateway's CA: the session works;
// without that trust (the system roots) Connect fails on the certificate.
func TestSDKOverWebSocketTLS(t *testing.T) {
	ca, dir := tlstest.Serving(t, "tcpgateway sdk wss test CA")
	h := startWS(t, func(c *config.Config) {
		c.Listen.WebSocket.TLS = &config.ListenTLS{CertFile: dir.CertFile(), KeyFile: dir.KeyFile()}
	})
	url := "wss://" + h.wsAddr + config.DefaultWebSocketPath
	c := h.connect("alice", "", func(o *client.Options) { o.Addr, o.TLS = url, ca.ClientConfig() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := c.Request(ctx, "echo", "say", []byte("over wss://"))
	if err != nil || string(resp.Payload) != "over wss://" {
		t.Fatalf("request over wss://: %v, %+v", err, resp)
	}
	eventually(t, "a TLS handshake and an upgrade counted", func() bool {
		return counter(h.m.TLSHandshakes.WithLabelValues("ok")) == 1 && counter(h.m.WebSocketUpgrades.WithLabelValues("ok")) == 1
	})

	if _, err := client.Connect(ctx, client.Options{Addr: url, Token: h.token("bob"), NoReconnect: true}); err == nil {
		t.Fatal("Connect trusting the system roots accepted the test CA's certificate")
	}
}
