package conformance

import (
	"bytes"
	"io"
	"testing"

	"github.com/gobwas/ws"
)

func TestParseTransport(t *testing.T) {
	for in, want := range map[string]string{"": TransportTCP, "tcp": TransportTCP, " websocket ": TransportWebSocket} {
		if got, err := parseTransport(in); err != nil || got != want {
			t.Errorf("parseTransport(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ws", "WebSocket", "quic"} {
		if _, err := parseTransport(bad); err == nil {
			t.Errorf("parseTransport(%q) accepted", bad)
		}
	}
}

// Inject over WebSocket: each whole frame one unmasked binary message, a partial one last.
func TestServerMessages(t *testing.T) {
	one := []byte{0, 0, 0, 2, 'h', 'i'}
	two := []byte{0, 0, 0, 1, 'x'}
	partial := []byte{0x00, 0x10, 0x00, 0x00, 0x0a}
	r := bytes.NewReader(serverMessages(append(append(append([]byte{}, one...), two...), partial...)))
	for i, want := range [][]byte{one, two, partial} {
		h, err := ws.ReadHeader(r)
		if err != nil || h.Length > int64(r.Len()) {
			t.Fatalf("message %d: %+v %v", i, h, err)
		}
		payload := make([]byte, h.Length)
		_, _ = io.ReadFull(r, payload)
		if h.OpCode != ws.OpBinary || !h.Fin || h.Masked || !bytes.Equal(payload, want) {
			t.Fatalf("message %d: %+v %q, want an unmasked binary message %q", i, h, payload, want)
		}
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes left", r.Len())
	}
}

// A client's masked frame: message() unmasks it; wire() gives the bytes as they came.
func TestWSFrameMessage(t *testing.T) {
	payload := []byte{0, 0, 0, 1, 'y'}
	var b bytes.Buffer
	f := ws.MaskFrame(ws.NewBinaryFrame(payload))
	if err := ws.WriteFrame(&b, f); err != nil {
		t.Fatal(err)
	}
	sent := bytes.Clone(b.Bytes())
	h, err := ws.ReadHeader(&b)
	if err != nil {
		t.Fatal(err)
	}
	wf := wsFrame{h: h, payload: b.Bytes()}
	if got := wf.message(); !bytes.Equal(got, payload) {
		t.Fatalf("message %q, want %q", got, payload)
	}
	if !bytes.Equal(wf.wire(), sent) {
		t.Fatal("wire() differs from the frame as sent")
	}
	text := wsFrame{h: ws.Header{OpCode: ws.OpText, Fin: true}, payload: payload}
	if text.message() != nil {
		t.Fatal("a text frame is no protocol message")
	}
}
