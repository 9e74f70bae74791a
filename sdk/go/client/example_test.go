package client_test

import (
	"context"
	"crypto/tls"
	"log"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
)

// fetchToken stands for the app's auth service.
func fetchToken(ctx context.Context) (string, error) { return "a JWT from the auth service", nil }

// The quick start of sdk/go/README.md (compiled, not run: it needs a gateway).
func ExampleConnect() {
	ctx := context.Background()
	var saved *client.ResumeState // nil on the first run; then what the last run stored
	inbox := make(chan *client.Push, 256)
	c, err := client.Connect(ctx, client.Options{
		Addr:        "gateway.example.com:7000",
		TokenSource: fetchToken,                                     // asked on every (re)connect and refresh
		TLS:         &tls.Config{ServerName: "gateway.example.com"}, // nil: plaintext
		Resume:      saved,
		OnPush:      func(p *client.Push) { inbox <- p }, // in order, once each; runs on the reader: hand off
	})
	if err != nil {
		log.Fatal(err) // the first connect failed (refused token, unreachable, bad certificate)
	}
	defer c.Close()
	resp, err := c.Request(ctx, "chat", "send", []byte("hi")) // resp.Code != OK: why no answer
	log.Println(resp.GetPayload(), err)
	if p := <-inbox; p.AckRequired {
		_ = c.Ack(ctx, p) // after the app has handled p
	}
	state, _ := c.ResumeState().MarshalText() // store it; the next run resumes from it
	log.Printf("%s", state)
}
