package conformance

import (
	"bytes"
	"encoding/binary"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Link is a TCP proxy between clients and a gateway (or the LB) that the test can break:
//
//   - Cut closes every connection through it (the client sees a loss without GOAWAY, as when
//     its network drops);
//   - while it is Down it closes each new connection at once (reconnects fail);
//   - Freeze makes the current connections drop every byte both ways without closing (a
//     half-open connection: only the client's heartbeat can tell);
//   - CutAfterFirstFrame makes the next connections end right after the gateway's first frame
//     (the HANDSHAKE_ACK) reached the client: a loss in the middle of a resume replay;
//   - Mute makes the current connections drop what the clients send while answering their
//     PINGs itself: the gateway hears nothing (its idle timeout fires), the client sees PONGs;
//   - Hold keeps what the clients of the current connections send, and Release delivers it
//     (a request that crosses a GOAWAY);
//   - Inject writes bytes to the clients of the current connections as if the gateway had sent
//     them (call it only where the gateway's stream is between frames); InjectThenReset then
//     half-closes and resets them at once (a last frame followed by a reset);
//   - Record makes the next connections pass whole frames only (so an Inject always lands
//     between two of the gateway's frames) and keeps what the SDK's behaviour is judged by:
//     each HANDSHAKE the clients send and each GOAWAY the gateway sends (Handshakes, GoAways),
//     and each PUSH_ACK and PUSH_REPLY the clients send (Answers).
//
// Everything else is passed through unchanged. Over WebSocket (EnvTransport) the same faults
// apply to WebSocket frames (linkws.go): the link then stands in front of listen.websocket.
type Link struct {
	ln     net.Listener
	target string
	ws     bool // WebSocket frames, not a byte stream (linkws.go)

	mu      sync.Mutex // guards everything below
	down    bool
	cutNext int // how many new connections end after the gateway's first frame
	pipes   map[*pipe]struct{}
	accepts []time.Time // when each client connection arrived
	// recording: new connections pass whole frames and note them in handshakes, goaways
	// and answers.
	recording  bool
	handshakes []*pb.Handshake
	goaways    []*pb.GoAway
	answers    []string // "ack <message id>" or "reply <message id>"
}

// pipe is one proxied connection.
type pipe struct {
	client, gateway net.Conn
	ws              bool // WebSocket frames (linkws.go)

	mu     sync.Mutex // guards frozen, held, queued; writes to gateway from the client side
	frozen bool
	held   bool
	queued []byte
	// heldPlain is what the client sent while held, unmasked (WebSocket): what Holding searches.
	heldPlain []byte
	// cutAfterFirst: end the connection once the gateway's first frame is through.
	cutAfterFirst bool
	// muted: the client's frames are dropped, its PINGs answered here (both directions then
	// pass whole frames only, so that a PONG never splits a frame of the gateway's).
	muted bool
	// record, when set (Link.Record), gets every whole frame passed on, both directions.
	record func(frame []byte, fromClient bool)
}

// StartLink listens on a loopback port and forwards to target until the test ends.
func StartLink(t testing.TB, target string) *Link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Link{ln: ln, target: target, ws: overWebSocket(), pipes: map[*pipe]struct{}{}}
	go l.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		l.Cut()
	})
	return l
}

// Addr is where clients connect (a ws:// URL over WebSocket).
func (l *Link) Addr() string { return clientAddress(l.ln.Addr().String(), false) }

// SetDown makes new connections fail (true) or pass (false).
func (l *Link) SetDown(down bool) {
	l.mu.Lock()
	l.down = down
	l.mu.Unlock()
}

// Accepts are the arrival times of the connections from index from on: every connect
// attempt of the clients behind the link, failed or not.
func (l *Link) Accepts(from int) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.accepts[min(from, len(l.accepts)):])
}

// Cut closes every connection through the link.
func (l *Link) Cut() {
	for _, p := range l.current() {
		p.close()
	}
}

// Freeze makes the current connections drop everything, both ways, from now on.
func (l *Link) Freeze() {
	for _, p := range l.current() {
		p.mu.Lock()
		p.frozen = true
		p.mu.Unlock()
	}
}

// CutAfterFirstFrame makes the next n connections end right after the gateway's first frame.
func (l *Link) CutAfterFirstFrame(n int) {
	l.mu.Lock()
	l.cutNext = n
	l.mu.Unlock()
}

// Mute makes the current connections drop what the clients send from now on, answering their
// PINGs with PONGs itself; what the gateway sends still passes.
func (l *Link) Mute() {
	for _, p := range l.current() {
		p.mu.Lock()
		p.muted = true
		p.mu.Unlock()
	}
}

// Hold keeps what the clients of the current connections send from now on, until Release.
func (l *Link) Hold() {
	for _, p := range l.current() {
		p.mu.Lock()
		p.held = true
		p.mu.Unlock()
	}
}

// Holding reports whether the bytes held so far contain s (a method name in a REQUEST).
func (l *Link) Holding(s string) bool {
	for _, p := range l.current() {
		p.mu.Lock()
		held := p.queued
		if p.ws {
			held = p.heldPlain
		}
		found := bytes.Contains(held, []byte(s))
		p.mu.Unlock()
		if found {
			return true
		}
	}
	return false
}

// Inject writes b to the client of every current connection (over WebSocket each frame in b
// as one binary message).
func (l *Link) Inject(b []byte) {
	for _, p := range l.current() {
		p.mu.Lock()
		_ = p.toClient(b)
		p.mu.Unlock()
	}
}

// toClient writes b to the client as the gateway would: over WebSocket, one binary message per
// frame. p.mu is held.
func (p *pipe) toClient(b []byte) error {
	if p.ws {
		b = serverMessages(b)
	}
	_, err := p.client.Write(b)
	return err
}

// InjectThenReset writes b to the client of every current connection, half-closes it (FIN) and
// resets it (SO_LINGER 0): what a client that wrote after the gateway's last frame and FIN can
// get (client-behaviour.md R37), without waiting for the client to write. Nothing more passes
// between that client and its gateway.
func (l *Link) InjectThenReset(b []byte) {
	for _, p := range l.current() {
		p.mu.Lock()
		p.frozen = true
		_ = p.toClient(b)
		if tc, ok := p.client.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
			// A reset drops what the kernel has not sent yet (the client's window may be full
			// while its reader is busy): the frames must have reached the client first.
			waitSent(tc, time.Second)
			_ = tc.SetLinger(0)
		}
		p.mu.Unlock()
		p.close()
	}
}

// waitSent waits, at most d, until the kernel has sent and had acknowledged everything written
// to c (its send queue, SIOCOUTQ, is empty).
func waitSent(c *net.TCPConn, d time.Duration) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		queued := -1
		_ = raw.Control(func(fd uintptr) {
			if n, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
				queued = n
			}
		})
		if queued <= 0 {
			return
		}
		time.Sleep(time.Millisecond) // polling the kernel's queue: no event says it emptied
	}
}

// Record makes the connections opened from now on pass whole frames only and keep the clients'
// HANDSHAKEs, PUSH_ACKs and PUSH_REPLYs and the gateway's GOAWAYs.
func (l *Link) Record() {
	l.mu.Lock()
	l.recording = true
	l.mu.Unlock()
}

// Handshakes are the HANDSHAKE frames the clients sent on recorded connections, in order.
func (l *Link) Handshakes() []*pb.Handshake {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.handshakes)
}

// GoAways are the GOAWAY frames the gateway sent on recorded connections, in order.
func (l *Link) GoAways() []*pb.GoAway {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.goaways)
}

// Answers are the answers the clients sent on recorded connections, in order, each
// "ack <message id>" (PUSH_ACK) or "reply <message id>" (PUSH_REPLY): what reached the gateway.
func (l *Link) Answers() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.answers)
}

// note keeps frame (length prefix included) if it is one that Record keeps.
func (l *Link) note(frame []byte, fromClient bool) {
	var f pb.Frame
	if len(frame) < 4 || proto.Unmarshal(frame[4:], &f) != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case fromClient && f.GetHandshake() != nil:
		l.handshakes = append(l.handshakes, f.GetHandshake())
	case !fromClient && f.GetGoaway() != nil:
		l.goaways = append(l.goaways, f.GetGoaway())
	case fromClient && f.GetPushAck() != nil:
		l.answers = append(l.answers, "ack "+f.GetPushAck().GetMessageId())
	case fromClient && f.GetPushReply() != nil:
		l.answers = append(l.answers, "reply "+f.GetPushReply().GetMessageId())
	}
}

// Release delivers what Hold kept and forwards again.
func (l *Link) Release() {
	for _, p := range l.current() {
		p.mu.Lock()
		if len(p.queued) > 0 {
			_, _ = p.gateway.Write(p.queued)
		}
		p.queued, p.heldPlain, p.held = nil, nil, false
		p.mu.Unlock()
	}
}

func (l *Link) current() []*pipe {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*pipe, 0, len(l.pipes))
	for p := range l.pipes {
		out = append(out, p)
	}
	return out
}

func (l *Link) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.serve(c)
	}
}

func (l *Link) serve(c net.Conn) {
	l.mu.Lock()
	down := l.down
	l.accepts = append(l.accepts, time.Now())
	l.mu.Unlock()
	if down {
		_ = c.Close()
		return
	}
	g, err := net.Dial("tcp", l.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p := &pipe{client: c, gateway: g, ws: l.ws}
	l.mu.Lock()
	if l.down {
		l.mu.Unlock()
		p.close()
		return
	}
	if l.cutNext > 0 {
		l.cutNext--
		p.cutAfterFirst = true
	}
	if l.recording {
		p.record = l.note
	}
	l.pipes[p] = struct{}{}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.pipes, p)
		l.mu.Unlock()
		p.close()
	}()
	if p.ws {
		p.serveWS()
		return
	}
	go func() {
		defer p.close()
		p.copy(g, c, true)
	}()
	p.copy(c, g, false)
}

// copy forwards src to dst until either fails; fromClient: the direction Hold applies to.
func (p *pipe) copy(dst, src net.Conn, fromClient bool) {
	buf := make([]byte, 32<<10)
	var partial []byte // framed modes: the start of a frame not yet whole
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			more := p.forward(dst, buf[:n], fromClient, &partial)
			p.mu.Unlock()
			if !more {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// forward passes b on as the pipe's mode says; false ends the connection. p.mu is held.
func (p *pipe) forward(dst net.Conn, b []byte, fromClient bool, partial *[]byte) bool {
	switch {
	case p.frozen:
		return true
	case fromClient && p.muted:
		*partial = append(*partial, b...)
		for _, fr := range splitFrames(partial) {
			if pong := pongFor(fr); pong != nil {
				if _, err := p.client.Write(pong); err != nil {
					return false
				}
			}
		}
		return true
	case fromClient && p.held:
		p.queued = append(p.queued, b...)
		return true
	case !fromClient && (p.muted || p.cutAfterFirst):
		*partial = append(*partial, b...)
		for _, fr := range splitFrames(partial) {
			if _, err := dst.Write(fr); err != nil || p.cutAfterFirst {
				return false
			}
		}
		return true
	case p.record != nil:
		*partial = append(*partial, b...)
		for _, fr := range splitFrames(partial) {
			p.record(fr, fromClient)
			if _, err := dst.Write(fr); err != nil {
				return false
			}
		}
		return true
	default:
		_, err := dst.Write(b)
		return err == nil
	}
}

// pongFor is the PONG (length prefix included) answering frame if it is a PING; nil otherwise.
func pongFor(frame []byte) []byte {
	var f pb.Frame
	if len(frame) < 4 || proto.Unmarshal(frame[4:], &f) != nil || f.GetPing() == nil {
		return nil
	}
	pong, err := protocol.Append(nil, &pb.Frame{Seq: f.Seq, Body: &pb.Frame_Pong{Pong: &pb.Pong{
		ClientTimeMs: f.GetPing().GetClientTimeMs(), ServerTimeMs: time.Now().UnixMilli()}}}, 1<<16)
	if err != nil {
		return nil
	}
	return pong
}

// splitFrames takes the whole frames (length prefix included) off the front of buf.
func splitFrames(buf *[]byte) [][]byte {
	var out [][]byte
	for len(*buf) >= 4 {
		n := 4 + int(binary.BigEndian.Uint32(*buf))
		if len(*buf) < n {
			break
		}
		out = append(out, slices.Clone((*buf)[:n]))
		*buf = (*buf)[n:]
	}
	return out
}

func (p *pipe) close() {
	_ = p.client.Close()
	_ = p.gateway.Close()
}
