package conformance

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"slices"

	"github.com/gobwas/ws"
)

// The Link over WebSocket (EnvTransport "websocket"): it relays the HTTP upgrade unchanged,
// then passes WebSocket frames, whole, both ways, and applies its faults to them: a binary
// message is one protocol frame (the agreed wire format), so holding, recording, muting and
// cutting after the gateway's first frame work per message, and Inject sends each frame it is
// given as one binary message of the gateway's (unmasked, as a server's are).

// maxWSFrame bounds a WebSocket frame the link reads (the gateway's and the SDKs' limits are
// far lower): a larger length ends the connection instead of an allocation.
const maxWSFrame = 1 << 24

// maxHTTPHead bounds the upgrade request and answer the link relays (the gateway's own bound).
const maxHTTPHead = 16 << 10

// wsFrame is one WebSocket frame as it crossed the link: header and payload as on the wire
// (masked when the client sent it).
type wsFrame struct {
	h       ws.Header
	payload []byte
}

// wire is the frame's bytes as on the wire.
func (f wsFrame) wire() []byte {
	var b bytes.Buffer
	_ = ws.WriteHeader(&b, f.h)
	b.Write(f.payload)
	return b.Bytes()
}

// message is the unmasked payload of a whole binary message (FIN set, no extension bits), the
// protocol frame it carries; nil for any other frame.
func (f wsFrame) message() []byte {
	if f.h.OpCode != ws.OpBinary || !f.h.Fin || f.h.Rsv != 0 {
		return nil
	}
	m := slices.Clone(f.payload)
	if f.h.Masked {
		ws.Cipher(m, f.h.Mask, 0)
	}
	return m
}

// serverMessages are b's protocol frames, each as one binary message of the gateway's; bytes
// after the last whole frame (a partial one, an injected length prefix) are one more message.
func serverMessages(b []byte) []byte {
	rest := slices.Clone(b)
	var out bytes.Buffer
	for _, fr := range splitFrames(&rest) {
		_ = ws.WriteFrame(&out, ws.NewBinaryFrame(fr))
	}
	if len(rest) > 0 {
		_ = ws.WriteFrame(&out, ws.NewBinaryFrame(rest))
	}
	return out.Bytes()
}

// relayUpgrade passes the client's upgrade request to the gateway and the gateway's answer
// back, unchanged. It returns readers positioned after them and whether the gateway switched
// protocols (otherwise the rest is passed as it is).
func relayUpgrade(client, gateway net.Conn) (cr, gr *bufio.Reader, upgraded bool, err error) {
	cr, gr = bufio.NewReader(client), bufio.NewReader(gateway)
	if _, err = relayHead(cr, gateway); err != nil {
		return nil, nil, false, err
	}
	head, err := relayHead(gr, client)
	if err != nil {
		return nil, nil, false, err
	}
	return cr, gr, bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")), nil
}

// relayHead copies an HTTP head, up to and including its empty line, from r to w.
func relayHead(r *bufio.Reader, w io.Writer) ([]byte, error) {
	var head []byte
	for {
		line, err := r.ReadSlice('\n')
		head = append(head, line...)
		if err != nil {
			return nil, err
		}
		if len(head) > maxHTTPHead {
			return nil, errors.New("HTTP head too large")
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
	}
	_, err := w.Write(head)
	return head, err
}

// serveWS forwards an upgraded connection frame by frame until either side ends.
func (p *pipe) serveWS() {
	cr, gr, upgraded, err := relayUpgrade(p.client, p.gateway)
	if err != nil {
		return
	}
	if !upgraded { // refused (an HTTP error): pass the rest of the answer as it is
		_, _ = io.Copy(p.client, gr)
		return
	}
	go func() {
		defer p.close()
		p.copyWS(p.gateway, cr, true)
	}()
	p.copyWS(p.client, gr, false)
}

// copyWS reads whole WebSocket frames from src and forwards them to dst as the pipe's mode
// says, until either fails.
func (p *pipe) copyWS(dst net.Conn, src io.Reader, fromClient bool) {
	for {
		h, err := ws.ReadHeader(src)
		if err != nil || h.Length > maxWSFrame {
			return
		}
		f := wsFrame{h: h, payload: make([]byte, h.Length)}
		if _, err := io.ReadFull(src, f.payload); err != nil {
			return
		}
		p.mu.Lock()
		more := p.forwardWS(dst, f, fromClient)
		p.mu.Unlock()
		if !more {
			return
		}
	}
}

// forwardWS is forward for WebSocket frames; false ends the connection. p.mu is held.
func (p *pipe) forwardWS(dst net.Conn, f wsFrame, fromClient bool) bool {
	switch {
	case p.frozen:
		return true
	case fromClient && p.muted:
		if pong := pongFor(f.message()); pong != nil {
			if _, err := p.client.Write(serverMessages(pong)); err != nil {
				return false
			}
		}
		return true
	case fromClient && p.held:
		p.queued = append(p.queued, f.wire()...)
		p.heldPlain = append(p.heldPlain, f.message()...)
		return true
	case p.record != nil:
		if m := f.message(); len(m) >= 4 {
			p.record(m, fromClient)
		}
	}
	if _, err := dst.Write(f.wire()); err != nil {
		return false
	}
	// The gateway's first frame (the HANDSHAKE_ACK) is through: end the connection.
	return !(p.cutAfterFirst && !fromClient && f.h.OpCode.IsData())
}
