//go:build bench

package bench

// Lean downlink receivers for TestDownlink: one raw protocol connection per user, a reader
// goroutine per connection that parses only PUSH frames (no message building) and records,
// for each, now − the send time the publisher wrote into the payload (Unix ns, 8 bytes, taken
// just before the publish call; same machine clock) and now − created_at_ms.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/wsclient"
)

const (
	dlFieldPush      = 16 // Frame.push
	dlPushPayload    = 2  // Push.payload
	dlPushCreatedAt  = 7  // Push.created_at_ms
	dlMaxFrame       = 65536
	dlHandshakeLimit = 10 * time.Second
)

// dlRecorder collects what the receivers saw.
type dlRecorder struct {
	mu      sync.Mutex
	hist    *hdrhistogram.Histogram // payload send time -> receipt, µs
	histMs  *hdrhistogram.Histogram // created_at_ms -> receipt, µs (ms resolution of the source)
	measure atomic.Bool             // record into the histograms only while set
	// from: only pushes whose payload send time is at or after this (Unix ns) are recorded.
	from atomic.Int64

	pushes    atomic.Int64 // all PUSH frames seen
	firstNs   atomic.Int64 // earliest receipt (Unix ns) since reset; 0 none
	lastNs    atomic.Int64 // latest receipt (Unix ns) since reset
	lost      atomic.Int64 // connections that ended
	badFrames atomic.Int64
}

func newDLRecorder() *dlRecorder {
	return &dlRecorder{hist: hdrhistogram.New(1, 60_000_000, 3), histMs: hdrhistogram.New(1, 60_000_000, 3)}
}

// reset clears the histograms and the first/last receipt times.
func (r *dlRecorder) reset() {
	r.mu.Lock()
	r.hist.Reset()
	r.histMs.Reset()
	r.mu.Unlock()
	r.firstNs.Store(0)
	r.lastNs.Store(0)
}

func (r *dlRecorder) record(nowNs, sentNs, createdMs int64) {
	r.pushes.Add(1)
	for {
		f := r.firstNs.Load()
		if (f != 0 && f <= nowNs) || r.firstNs.CompareAndSwap(f, nowNs) {
			break
		}
	}
	for {
		l := r.lastNs.Load()
		if l >= nowNs || r.lastNs.CompareAndSwap(l, nowNs) {
			break
		}
	}
	if !r.measure.Load() || sentNs < r.from.Load() {
		return
	}
	r.mu.Lock()
	if sentNs > 0 {
		_ = r.hist.RecordValue(max((nowNs-sentNs)/1000, 1))
	}
	if createdMs > 0 {
		_ = r.histMs.RecordValue(max((nowNs-createdMs*1e6)/1000, 1))
	}
	r.mu.Unlock()
}

// dlConn is one receiving connection.
type dlConn struct{ nc net.Conn }

// dlToken mints an HS256 token for user like tcpgwctl bench does.
func dlToken(secret []byte, user string) (string, error) {
	now := time.Now()
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(),
		"iss": benchIssuer, "aud": benchAudience,
	}).SignedString(secret)
}

// dlDial connects as user, completes the handshake and starts the reader: to addr over TCP, or
// to wsURL over WebSocket when it is set (test/wsclient: the same frames, one per message).
func dlDial(ctx context.Context, addr, wsURL string, src net.IP, secret []byte, user string, rec *dlRecorder) (*dlConn, error) {
	token, err := dlToken(secret, user)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, dlHandshakeLimit)
	defer cancel()
	d := &net.Dialer{}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	var nc net.Conn
	if wsURL != "" {
		nc, err = wsclient.Dial(ctx, wsURL, wsclient.Options{NetDial: d.DialContext})
	} else {
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline()
	_ = nc.SetDeadline(dl)
	hs, err := protocol.Append(nil, &pb.Frame{Body: &pb.Frame_Handshake{Handshake: &pb.Handshake{
		ProtocolVersion: protocol.Version, Token: token, DeviceId: "dl-" + user, ClientVersion: "downlink-bench",
	}}}, dlMaxFrame)
	if err == nil {
		_, err = nc.Write(hs)
	}
	r := bufio.NewReaderSize(nc, 4096)
	var f *pb.Frame
	if err == nil {
		f, _, err = protocol.Read(r, dlMaxFrame, nil)
	}
	if err == nil && f.GetHandshakeAck() == nil {
		err = fmt.Errorf("expected HANDSHAKE_ACK, got %s", protocol.Kind(f))
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	go dlReadLoop(r, rec)
	return &dlConn{nc: nc}, nil
}

func (c *dlConn) close() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.nc.Close()
}

func dlReadLoop(r *bufio.Reader, rec *dlRecorder) {
	var buf []byte
	for {
		head, err := r.Peek(protocol.HeaderLen)
		if err != nil {
			rec.lost.Add(1)
			return
		}
		n := int(binary.BigEndian.Uint32(head))
		if n == 0 || n > dlMaxFrame {
			rec.badFrames.Add(1)
			rec.lost.Add(1)
			return
		}
		_, _ = r.Discard(protocol.HeaderLen)
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			rec.lost.Add(1)
			return
		}
		if push, ok := dlPushBody(buf[:n]); ok {
			now := time.Now().UnixNano()
			sent, created := dlParsePush(push)
			rec.record(now, sent, created)
		}
	}
}

// dlPushBody returns the Push field of a Frame body, if it is a PUSH.
func dlPushBody(b []byte) ([]byte, bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		if num == dlFieldPush && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			return v, m >= 0
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return nil, false
		}
		b = b[n:]
	}
	return nil, false
}

// dlParsePush returns the send time from the payload (Unix ns; 0 if absent) and created_at_ms.
func dlParsePush(b []byte) (sentNs, createdMs int64) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		switch {
		case num == dlPushPayload && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return
			}
			if len(v) >= 8 {
				sentNs = int64(binary.BigEndian.Uint64(v))
			}
			n = m
		case num == dlPushCreatedAt && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return
			}
			createdMs = int64(v)
			n = m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return
			}
		}
		b = b[n:]
	}
	return
}

// dlPayload is a payload carrying the send time.
func dlPayload(now time.Time, size int) []byte {
	p := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(p, uint64(now.UnixNano()))
	return p
}

// dlConnectAll opens n connections (users bench-<from>..), 64 at a time, round-robin over
// sources; it returns the ones that worked and the first error.
func dlConnectAll(ctx context.Context, addr, wsURL string, sources []net.IP, secret []byte, from, n int, rec *dlRecorder) ([]*dlConn, error) {
	conns := make([]*dlConn, n)
	idx := make(chan int)
	var wg sync.WaitGroup
	var firstErr error
	var emu sync.Mutex
	for range min(n, 64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				var src net.IP
				if len(sources) > 0 {
					src = sources[i%len(sources)]
				}
				c, err := dlDial(ctx, addr, wsURL, src, secret, "bench-"+strconv.Itoa(from+i), rec)
				if err != nil {
					emu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					emu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		idx <- i
	}
	close(idx)
	wg.Wait()
	out := conns[:0]
	for _, c := range conns {
		if c != nil {
			out = append(out, c)
		}
	}
	return out, firstErr
}

// dlUserSys is the user and system CPU time of a process so far (/proc/<pid>/stat utime,
// stime), in µs.
func dlUserSys(pid int) (user, sys int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u * (1e6 / clockTick), s * (1e6 / clockTick)
}
