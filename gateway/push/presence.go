package push

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// maxEventIDLen bounds the ids a presence view keeps: the gateway never writes longer ones
// (it refuses handshakes with longer ids), so a longer one is not a gateway's.
const maxEventIDLen = 256

// Reasons Presence skips a record (PresenceStats.Skipped).
const (
	SkipUndecodable = "undecodable"   // the value is not a SessionEvent
	SkipInvalid     = "invalid_event" // a kind it does not know, or an id missing or too long
)

// ErrUndecodable and ErrInvalidEvent are the errors Apply and ApplyRecord return for a
// record they skip; the view is unchanged.
var (
	ErrUndecodable  = errors.New("presence: record is not a SessionEvent")
	ErrInvalidEvent = errors.New("presence: SessionEvent without a known kind, user, session, server or connection id, or with an id too long")
)

// Online is one session of a user and the gateway pod holding it.
type Online struct {
	SessionID     string
	ServerID      string
	ConnectionID  string
	DeviceID      string
	ClientVersion string
	RemoteAddress string
	SinceMs       int64 // at_ms of its CONNECTED or RESUMED
	epoch         int64
}

// PresenceStats count what a Presence folded.
type PresenceStats struct {
	Applied int64
	Skipped map[string]int64 // by reason (SkipUndecodable, SkipInvalid)
	// Missing: events each gateway process numbered but this view has not seen (the sum
	// over processes of the highest seq minus the events seen). Once the view has read every
	// partition up to its end, a positive count means the gateways dropped events (Kafka
	// slow or down): sessions of those processes may be shown online or offline wrongly.
	Missing int64
}

type process struct {
	serverID string
	epoch    int64
}

type processSeq struct{ max, seen uint64 }

// Presence folds session events (a TCPGateway's events topic) into who is online where:
// user → sessions → gateway pod. Feed it every partition of the topic, from a point before
// the sessions you care about connected (the start of retention for a full view). A
// DISCONNECTED ends only the connection it names, so events of two pods arriving in either
// order (a drained session resumed elsewhere) leave the right one online; an event from a
// newer process (epoch) of a pod ends what the pod's earlier process held (it was killed
// without a word). Records that are not well-formed events are skipped and counted, never
// trusted. Safe for concurrent use.
type Presence struct {
	mu      sync.Mutex
	users   map[string]map[string]Online // user id → session id → where
	epochs  map[string]int64             // server id → newest epoch seen
	procs   map[process]*processSeq
	applied int64
	skipped map[string]int64
}

// NewPresence makes an empty view.
func NewPresence() *Presence {
	return &Presence{users: map[string]map[string]Online{}, epochs: map[string]int64{},
		procs: map[process]*processSeq{}, skipped: map[string]int64{}}
}

// ApplyRecord decodes a record's value and folds it (see Apply).
func (p *Presence) ApplyRecord(value []byte) error {
	ev := &pb.SessionEvent{}
	if err := proto.Unmarshal(value, ev); err != nil {
		p.skip(SkipUndecodable)
		return ErrUndecodable
	}
	return p.Apply(ev)
}

func (p *Presence) skip(reason string) {
	p.mu.Lock()
	p.skipped[reason]++
	p.mu.Unlock()
}

func validEvent(ev *pb.SessionEvent) bool {
	switch ev.Kind {
	case pb.SessionEvent_KIND_CONNECTED, pb.SessionEvent_KIND_RESUMED, pb.SessionEvent_KIND_REPLACED, pb.SessionEvent_KIND_DISCONNECTED:
	default:
		return false
	}
	for _, id := range []string{ev.UserId, ev.SessionId, ev.ServerId, ev.ConnectionId} {
		if id == "" || len(id) > maxEventIDLen {
			return false
		}
	}
	return len(ev.DeviceId) <= maxEventIDLen && len(ev.ClientVersion) <= maxEventIDLen && len(ev.RemoteAddress) <= maxEventIDLen
}

// Apply folds one event.
func (p *Presence) Apply(ev *pb.SessionEvent) error {
	if !validEvent(ev) {
		p.skip(SkipInvalid)
		return ErrInvalidEvent
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.applied++
	p.count(ev)
	if ev.Epoch < p.epochs[ev.ServerId] {
		return nil // from a process the pod has since replaced: what it held is gone
	}
	if ev.Epoch > p.epochs[ev.ServerId] {
		p.epochs[ev.ServerId] = ev.Epoch
		p.forgetOlderLocked(ev.ServerId, ev.Epoch)
	}
	sessions := p.users[ev.UserId]
	switch ev.Kind {
	case pb.SessionEvent_KIND_CONNECTED, pb.SessionEvent_KIND_RESUMED:
		if sessions == nil {
			sessions = map[string]Online{}
			p.users[ev.UserId] = sessions
		}
		sessions[ev.SessionId] = Online{
			SessionID: ev.SessionId, ServerID: ev.ServerId, ConnectionID: ev.ConnectionId,
			DeviceID: ev.DeviceId, ClientVersion: ev.ClientVersion, RemoteAddress: ev.RemoteAddress,
			SinceMs: ev.AtMs, epoch: ev.Epoch,
		}
	case pb.SessionEvent_KIND_REPLACED, pb.SessionEvent_KIND_DISCONNECTED:
		if o, ok := sessions[ev.SessionId]; ok && o.ConnectionID == ev.ConnectionId {
			delete(sessions, ev.SessionId)
			if len(sessions) == 0 {
				delete(p.users, ev.UserId)
			}
		}
	}
	return nil
}

// count keeps each process's highest seq and number of events seen.
func (p *Presence) count(ev *pb.SessionEvent) {
	k := process{ev.ServerId, ev.Epoch}
	ps := p.procs[k]
	if ps == nil {
		ps = &processSeq{}
		p.procs[k] = ps
	}
	ps.seen++
	ps.max = max(ps.max, ev.Seq)
}

// forgetOlderLocked ends the sessions serverID's earlier processes held.
func (p *Presence) forgetOlderLocked(serverID string, epoch int64) {
	for user, sessions := range p.users {
		for id, o := range sessions {
			if o.ServerID == serverID && o.epoch < epoch {
				delete(sessions, id)
			}
		}
		if len(sessions) == 0 {
			delete(p.users, user)
		}
	}
}

// User returns the user's online sessions, by session id.
func (p *Presence) User(userID string) []Online {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Online, 0, len(p.users[userID]))
	for _, o := range p.users[userID] {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SessionID < out[j].SessionID })
	return out
}

// Users is the number of users with at least one session online.
func (p *Presence) Users() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.users)
}

// Stats returns what the view folded and skipped so far.
func (p *Presence) Stats() PresenceStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PresenceStats{Applied: p.applied, Skipped: map[string]int64{}}
	for r, n := range p.skipped {
		st.Skipped[r] = n
	}
	for _, ps := range p.procs {
		if ps.max > ps.seen {
			st.Missing += int64(ps.max - ps.seen)
		}
	}
	return st
}

// Consume folds every record r returns until ctx ends or r is closed; records that are not
// well-formed events are skipped and counted (Stats), never fatal. Give it one reader per
// partition of the events topic (a Reader with Partition set), or a consumer-group reader
// that this view alone uses: presence needs every partition.
func (p *Presence) Consume(ctx context.Context, r *kafka.Reader) error {
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return err
		}
		_ = p.ApplyRecord(m.Value) // a bad record is counted in Stats and skipped
	}
}
