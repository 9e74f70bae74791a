package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tcpgateway/tcpgateway/gateway/metrics"
	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/gateway/uplink"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// frameCounters resolves the per-kind counters once: a label lookup per frame would cost a
// lock and a hash on the hottest path.
type frameCounters struct {
	inByKind  map[string]prometheus.Counter
	outByKind map[string]prometheus.Counter
	bytesIn   prometheus.Counter
	bytesOut  prometheus.Counter
}

func newFrameCounters(m *metrics.Gateway) *frameCounters {
	fc := &frameCounters{
		inByKind:  map[string]prometheus.Counter{},
		outByKind: map[string]prometheus.Counter{},
		bytesIn:   m.Bytes.WithLabelValues(metrics.In),
		bytesOut:  m.Bytes.WithLabelValues(metrics.Out),
	}
	fields := (&pb.Frame{}).ProtoReflect().Descriptor().Oneofs().ByName("body").Fields()
	for i := 0; i < fields.Len(); i++ {
		kind := string(fields.Get(i).Name())
		fc.inByKind[kind] = m.Frames.WithLabelValues(kind, metrics.In)
		fc.outByKind[kind] = m.Frames.WithLabelValues(kind, metrics.Out)
	}
	return fc
}

func (fc *frameCounters) in(kind string, bytes int) {
	if c, ok := fc.inByKind[kind]; ok {
		c.Inc()
	}
	fc.bytesIn.Add(float64(bytes))
}

func (fc *frameCounters) out(kind string) {
	if c, ok := fc.outByKind[kind]; ok {
		c.Inc()
	}
}

// sendTo encodes f and queues it on sess. Encoding failures (a frame above the max size)
// are answered with an ERROR on the session rather than silently dropped.
func (s *Server) sendTo(sess *session.Session, f *pb.Frame) {
	b, err := protocol.Append(nil, f, s.limits.MaxFrameBytes)
	if err != nil {
		s.log.Error("dropping an unencodable frame", "kind", protocol.Kind(f), "err", err, "remote", sess.Remote)
		return
	}
	s.SendEncoded(sess, protocol.Kind(f), b)
}

// SendEncoded queues an already encoded frame and starts the session's flush; broadcasts
// encode once and share the bytes.
func (s *Server) SendEncoded(sess *session.Session, kind string, frame []byte) {
	s.counted(kind, sess.Send(frame))
}

// QueueEncoded queues an already encoded frame without starting the session's flush
// (session.Queue): it returns true when the caller must call sess.Wake once its batch is
// queued.
func (s *Server) QueueEncoded(sess *session.Session, kind string, frame []byte) bool {
	wake, err := sess.Queue(frame)
	s.counted(kind, err)
	return wake
}

// DeliverEncoded sends an already encoded frame that has nothing to be merged with (a lone
// downlink record): written at once on the caller's goroutine when the session is idle,
// counted in t (session.Deliver), else queued and woken as QueueEncoded + Wake would.
func (s *Server) DeliverEncoded(sess *session.Session, kind string, frame []byte, t *session.Tally) {
	s.counted(kind, sess.Deliver(frame, t))
}

// counted counts a frame queued, or dropped and why.
func (s *Server) counted(kind string, err error) {
	switch err {
	case nil:
		s.frames.out(kind)
	case session.ErrSlowConsumer:
		s.m.QueueDrops.WithLabelValues(string(session.ReasonSlowConsumer)).Inc()
	default:
		s.m.QueueDrops.WithLabelValues("closed").Inc()
	}
}

func (s *Server) goAwayFrame(reason pb.GoAway_Reason, delay time.Duration, resumeToken string) []byte {
	f := &pb.Frame{Body: &pb.Frame_Goaway{Goaway: &pb.GoAway{
		Reason: reason, ReconnectDelayMs: uint32(delay.Milliseconds()), ResumeToken: resumeToken,
	}}}
	b, _ := protocol.Append(nil, f, s.limits.MaxFrameBytes)
	s.frames.out("goaway")
	return b
}

// ObserveUplink is the router's Observe hook: request counts and latency by route.
func ObserveUplink(m *metrics.Gateway) func(service string, code uplink.Code, status int, elapsed time.Duration) {
	return func(service string, code uplink.Code, status int, elapsed time.Duration) {
		m.Requests.WithLabelValues(service, string(code)).Inc()
		label := string(code)
		if code == uplink.CodeOK {
			label = strconv.Itoa(status)
		}
		m.UplinkLatency.WithLabelValues(service, label).Observe(elapsed.Seconds())
	}
}
