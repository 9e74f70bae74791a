package push

import (
	"bufio"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// TestPresenceVectors folds testdata/presence.txt, the vectors the Java push SDK's
// PresenceVectorsTest folds too: both SDKs keep the same view of the same records.
func TestPresenceVectors(t *testing.T) {
	f, err := os.Open("testdata/presence.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		p     *Presence
		name  string
		cases int
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		verb, rest, _ := strings.Cut(line, " ")
		if verb == "case" {
			p, name = NewPresence(), rest
			cases++
			continue
		}
		if p == nil {
			t.Fatalf("line %d: %q before the first case", n, line)
		}
		f := strings.Fields(rest)
		at := func() string { return "line " + strconv.Itoa(n) + " (" + name + ")" }
		switch verb {
		case "event", "bad":
			want := error(nil)
			if verb == "bad" {
				want = ErrInvalidEvent
			}
			value, err := proto.Marshal(vectorEvent(t, f))
			if err != nil {
				t.Fatalf("%s: %v", at(), err)
			}
			if err := p.ApplyRecord(value); !errors.Is(err, want) {
				t.Errorf("%s: %v, want %v", at(), err, want)
			}
		case "record":
			value := []byte{}
			if f[0] != "-" {
				if value, err = hex.DecodeString(f[0]); err != nil {
					t.Fatalf("%s: %v", at(), err)
				}
			}
			want := map[string]error{"applied": nil, SkipUndecodable: ErrUndecodable, SkipInvalid: ErrInvalidEvent}[f[1]]
			if err := p.ApplyRecord(value); !errors.Is(err, want) {
				t.Errorf("%s: %v, want %s", at(), err, f[1])
			}
		case "online":
			want := ""
			if len(f) > 1 {
				want = f[1]
			}
			if got := where(p, vectorString(f[0])); got != want {
				t.Errorf("%s: online %q, want %q", at(), got, want)
			}
		case "users":
			if got := strconv.Itoa(p.Users()); got != f[0] {
				t.Errorf("%s: %s users, want %s", at(), got, f[0])
			}
		case "stats":
			st := p.Stats()
			got := strings.Join([]string{strconv.FormatInt(st.Applied, 10), strconv.FormatInt(st.Skipped[SkipUndecodable], 10),
				strconv.FormatInt(st.Skipped[SkipInvalid], 10), strconv.FormatInt(st.Missing, 10)}, " ")
			if got != strings.Join(f, " ") {
				t.Errorf("%s: stats %s, want %s (applied undecodable invalid missing)", at(), got, strings.Join(f, " "))
			}
		default:
			t.Fatalf("line %d: unknown verb %q", n, verb)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cases < 10 {
		t.Fatalf("%d cases read", cases)
	}
}

var vectorKinds = map[string]pb.SessionEvent_Kind{
	"connected": pb.SessionEvent_KIND_CONNECTED, "disconnected": pb.SessionEvent_KIND_DISCONNECTED,
	"replaced": pb.SessionEvent_KIND_REPLACED, "resumed": pb.SessionEvent_KIND_RESUMED,
}

// vectorEvent builds the event of an event or bad line: KIND SERVER EPOCH SEQ CONN USER SESSION [REMOTE].
func vectorEvent(t *testing.T, f []string) *pb.SessionEvent {
	t.Helper()
	if len(f) < 7 {
		t.Fatalf("event fields %q", f)
	}
	kind, ok := vectorKinds[f[0]]
	if !ok {
		n, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("kind %q", f[0])
		}
		kind = pb.SessionEvent_Kind(n)
	}
	epoch, err1 := strconv.ParseInt(f[2], 10, 64)
	seq, err2 := strconv.ParseUint(f[3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	ev := &pb.SessionEvent{Kind: kind, ServerId: vectorString(f[1]), Epoch: epoch, Seq: seq,
		ConnectionId: vectorString(f[4]), UserId: vectorString(f[5]), SessionId: vectorString(f[6])}
	if len(f) > 7 {
		ev.RemoteAddress = vectorString(f[7])
	}
	return ev
}

// vectorString expands "-" (empty) and "T*N" (T repeated N times).
func vectorString(s string) string {
	if s == "-" {
		return ""
	}
	if tok, n, ok := strings.Cut(s, "*"); ok {
		if count, err := strconv.Atoi(n); err == nil {
			return strings.Repeat(tok, count)
		}
	}
	return s
}
