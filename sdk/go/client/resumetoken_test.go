package client_test

import (
	"sync/atomic"
	"testing"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// ackWithWatermark answers a handshake with one watermark, so every later handshake resumes.
func (c *fakeConn) ackWithWatermark() {
	c.t.Helper()
	c.write(&pb.Frame{Body: &pb.Frame_HandshakeAck{HandshakeAck: &pb.HandshakeAck{
		ProtocolVersion: protocol.Version, SessionId: "s1", UserId: "alice", ServerId: "fake",
		Positions: []*pb.Position{{Partition: 0, Offset: -1}},
	}}})
}

// resumeOf reads the client's HANDSHAKE and returns its resume (nil: none).
func (c *fakeConn) resumeOf() *pb.Resume {
	c.t.Helper()
	hs := c.read().GetHandshake()
	if hs == nil {
		c.t.Fatal("the first frame is not a HANDSHAKE")
	}
	return hs.GetResume()
}

// TestResumeTokenUsedOnceAfterDraining (R26, R42): the token of a GOAWAY DRAINING or REBALANCE
// goes on every handshake of the reconnect that follows it until one is acknowledged (a refused
// attempt keeps it), an export meanwhile holds it, and after the acknowledgement it is gone: the
// next loss without GOAWAY resumes without a token and exports hold none. A reason the client
// does not know (a newer gateway's) reconnects and resumes too, without the token (R43).
func TestResumeTokenUsedOnceAfterDraining(t *testing.T) {
	for _, tc := range []struct {
		reason pb.GoAway_Reason
		token  string
	}{{pb.GoAway_REASON_DRAINING, "rt-1"}, {pb.GoAway_REASON_REBALANCE, "rt-1"}, {pb.GoAway_Reason(99), ""}} {
		t.Run(tc.reason.String(), func(t *testing.T) { testResumeTokenOnce(t, tc.reason, tc.token) })
	}
}

func testResumeTokenOnce(t *testing.T, reason pb.GoAway_Reason, want string) {
	g := newFakeGateway(t)
	var cl atomic.Pointer[client.Client]
	var connects atomic.Int32
	exported := make(chan client.ResumeState, 4)
	connected := connectAsync(t, client.Options{Addr: g.addr(), Token: "tok", Reconnect: fastReconnect,
		OnConnect: func(*pb.HandshakeAck) { connects.Add(1) },
		OnDisconnect: func(error) {
			if c := cl.Load(); c != nil {
				exported <- c.ResumeState()
			}
		}})
	first := g.accept()
	first.handshake()
	first.ackWithWatermark()
	cl.Store(connected())
	first.write(&pb.Frame{Body: &pb.Frame_Goaway{Goaway: &pb.GoAway{Reason: reason, ResumeToken: "rt-1"}}})

	refused := g.accept()
	if r := refused.resumeOf(); r == nil || r.ResumeToken != want {
		t.Fatalf("handshake after GOAWAY %s resumes with %v, want token %q", reason, r, want)
	}
	if st := <-exported; st.ResumeToken != want {
		t.Fatalf("export while the reconnect is pending: token %q, want %q", st.ResumeToken, want)
	}
	refused.fail(pb.ErrorCode_ERROR_CODE_SERVER_FULL, "full") // not acknowledged: the move goes on

	second := g.accept()
	if r := second.resumeOf(); r == nil || r.ResumeToken != want {
		t.Fatalf("second attempt resumes with %v, want token %q again", r, want)
	}
	second.ackWithWatermark()
	waitFor(t, timeout, "the resumed connection", func() bool { return connects.Load() == 2 })
	if st := cl.Load().ResumeState(); st.ResumeToken != "" {
		t.Fatalf("export after the acknowledged resume: token %q, want none", st.ResumeToken)
	}

	second.nc.Close() // a loss without GOAWAY
	third := g.accept()
	if r := third.resumeOf(); r == nil || r.ResumeToken != "" {
		t.Fatalf("handshake after a loss resumes with %v, want a resume without token", r)
	}
	if st := <-exported; st.ResumeToken != "" {
		t.Fatalf("export after the loss: token %q, want none", st.ResumeToken)
	}
}
