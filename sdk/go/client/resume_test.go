package client_test

import (
	"strings"
	"testing"

	"github.com/tcpgateway/tcpgateway/sdk/go/client"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// javaEncoded is what the Java SDK's ResumeState.encode writes for the same state: a state
// stored by either SDK reads in the other.
const javaEncoded = "tcpgw-resume 1\ns1\nrt-1\n0:4 1:-1\n"

func TestResumeStateTextFormIsJavas(t *testing.T) {
	s := client.ResumeState{SessionID: "s1", ResumeToken: "rt-1", Positions: map[int32]int64{1: -1, 0: 4}}
	b, err := s.MarshalText()
	if err != nil || string(b) != javaEncoded {
		t.Fatalf("MarshalText = %q, %v; want %q", b, err, javaEncoded)
	}
	var back client.ResumeState
	if err := back.UnmarshalText(b); err != nil {
		t.Fatal(err)
	}
	if back.SessionID != "s1" || back.ResumeToken != "rt-1" || len(back.Positions) != 2 || back.Positions[0] != 4 || back.Positions[1] != -1 {
		t.Fatalf("round trip gave %+v", back)
	}
	var empty client.ResumeState
	if err := empty.UnmarshalText([]byte("tcpgw-resume 1\ns2\n\n\n")); err != nil || empty.SessionID != "s2" || len(empty.Positions) != 0 {
		t.Fatalf("no token, no positions: %+v, %v", empty, err)
	}
}

// Stored state is input like any other: a tampered or truncated one is refused with a reason,
// never half-imported.
func TestResumeStateRefusesMalformedText(t *testing.T) {
	for name, text := range map[string]string{
		"other format":     "{\"session_id\":\"s1\"}",
		"other version":    "tcpgw-resume 2\ns1\n\n0:1\n",
		"truncated":        "tcpgw-resume 1\ns1\n",
		"no session":       "tcpgw-resume 1\n\n\n0:1\n",
		"space in session": "tcpgw-resume 1\ns 1\n\n0:1\n",
		"no colon":         "tcpgw-resume 1\ns1\n\n0\n",
		"offset not int":   "tcpgw-resume 1\ns1\n\n0:x\n",
		"partition 2^31":   "tcpgw-resume 1\ns1\n\n2147483648:1\n",
		"negative part":    "tcpgw-resume 1\ns1\n\n-1:1\n",
		"offset below -1":  "tcpgw-resume 1\ns1\n\n0:-2\n",
		"partition twice":  "tcpgw-resume 1\ns1\n\n0:1 0:2\n",
		"double space":     "tcpgw-resume 1\ns1\n\n0:1  1:2\n",
		"too large":        "tcpgw-resume 1\ns1\n\n" + strings.Repeat("0", 1<<20) + "\n",
	} {
		s := client.ResumeState{SessionID: "kept"}
		if err := s.UnmarshalText([]byte(text)); err == nil {
			t.Errorf("%s: accepted as %+v", name, s)
		} else if s.SessionID != "kept" {
			t.Errorf("%s: refused (%v) but overwrote the state", name, err)
		}
	}
	if _, err := (client.ResumeState{SessionID: "s1", ResumeToken: "a\nb"}).MarshalText(); err == nil {
		t.Error("a resume token with a line break was encoded")
	}
}

// Export after pushes, import into a new client: its first handshake resumes the session from
// the exported positions (the -1 floor of an empty partition included) with the resume token,
// and a record the gateway replays at an exported position is not delivered twice.
func TestExportedStateResumesInANewClient(t *testing.T) {
	g := newFakeGateway(t)
	pushes := make(chan *pb.Push, 8)
	connected := connectAsync(t, client.Options{Addr: g.addr(), Token: "tok", NoReconnect: true,
		OnPush: func(p *client.Push) { pushes <- p.Push }})
	first := g.accept()
	first.handshake()
	first.write(&pb.Frame{Body: &pb.Frame_HandshakeAck{HandshakeAck: &pb.HandshakeAck{
		ProtocolVersion: protocol.Version, SessionId: "s1", UserId: "alice", ServerId: "fake",
		Positions: []*pb.Position{{Partition: 0, Offset: 2}, {Partition: 1, Offset: -1}},
	}}})
	c := connected()
	first.write(pushAt("m3", 0, 3))
	first.write(pushAt("m4", 0, 4))
	waitFor(t, timeout, "both pushes", func() bool { return len(pushes) == 2 })
	got := c.ResumeState()
	if got.SessionID != "s1" || got.ResumeToken != "" || len(got.Positions) != 2 || got.Positions[0] != 4 || got.Positions[1] != -1 {
		t.Fatalf("exported %+v, want s1 at 0:4 1:-1", got)
	}
	got.ResumeToken = "rt-1" // as after a DRAINING GOAWAY
	stored, err := got.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	<-pushes
	<-pushes

	var imported client.ResumeState
	if err := imported.UnmarshalText(stored); err != nil {
		t.Fatal(err)
	}
	connected = connectAsync(t, client.Options{Addr: g.addr(), Token: "tok", NoReconnect: true, Resume: &imported,
		OnPush: func(p *client.Push) { pushes <- p.Push }})
	second := g.accept()
	hs := second.read().GetHandshake()
	if hs.GetSessionId() != "s1" || hs.GetResume().GetResumeToken() != "rt-1" {
		t.Fatalf("handshake after the restart %v, want session s1 resumed with rt-1", hs)
	}
	sent := map[int32]int64{}
	for _, p := range hs.GetResume().GetPositions() {
		sent[p.Partition] = p.Offset
	}
	if len(sent) != 2 || sent[0] != 4 || sent[1] != -1 {
		t.Fatalf("resumed from %v, want 0:4 1:-1", sent)
	}
	second.write(&pb.Frame{Body: &pb.Frame_HandshakeAck{HandshakeAck: &pb.HandshakeAck{
		ProtocolVersion: protocol.Version, SessionId: "s1", UserId: "alice", ServerId: "fake",
		Resume: &pb.ResumeResult{Status: pb.ResumeResult_STATUS_COMPLETE},
	}}})
	c2 := connected()
	second.write(pushAt("m4", 0, 4)) // a replay of what the first run stored
	second.write(pushAt("m0", 1, 0)) // published while the app was dead
	p := <-pushes
	if p.MessageId != "m0" {
		t.Fatalf("first push after the restart %s, want m0 (m4 was delivered before it)", p.MessageId)
	}
	if st := c2.ResumeState(); st.Positions[1] != 0 || st.Positions[0] != 4 {
		t.Fatalf("state after the restart %+v, want 0:4 1:0", st)
	}
}

func TestResumeOptionNamingAnotherSessionIsRefused(t *testing.T) {
	_, err := client.Connect(t.Context(), client.Options{Addr: "127.0.0.1:1", Token: "tok", SessionID: "a",
		Resume: &client.ResumeState{SessionID: "b", Positions: map[int32]int64{0: 1}}})
	if err == nil || !strings.Contains(err.Error(), "different sessions") {
		t.Fatalf("Connect = %v, want refused before dialling", err)
	}
}

func pushAt(id string, partition int32, offset int64) *pb.Frame {
	return &pb.Frame{Body: &pb.Frame_Push{Push: &pb.Push{MessageId: id, Position: &pb.Position{Partition: partition, Offset: offset}}}}
}
