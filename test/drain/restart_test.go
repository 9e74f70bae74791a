package drain

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tcpgateway/tcpgateway/test/traffic"
)

// Issue 16: a SIGKILLed gateway restarted under the same server id resumes from the offsets
// its group committed, with no gap. It is the only gateway behind the LB, so its clients have
// nowhere else to go: what was published while it was dead reaches them only through the
// restarted process, which reads from the committed offsets (a gap there would be records
// nobody delivers) and refills its window from before them (what the clients missed before
// the kill). The clients resume on it and get every record once, in order.
func TestSIGKILLRestartSameServerID(t *testing.T) {
	sc := currentScale(t)
	c := newCluster(t, sc, 1)
	f := c.connectFleet(sc.clients)
	c.waitSessions(sc.clients)
	p := c.startProducer(sc.clients)
	victim := c.gws[0]
	group := c.topic + "." + victim.ID // the consumer's group (gateway/downlink)
	run(sc.warmup)

	t0 := time.Now()
	if err := victim.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.lb.Remove(victim.ClientAddr)
	if _, err := victim.WaitExit(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	endsAtKill := c.partitionEnds(t)
	run(sc.after) // records published while no gateway runs
	committed := c.committedOffsets(t, group)
	endsAtRestart := c.partitionEnds(t)

	restartAt := time.Now()
	restarted, err := c.startGateway(victim.ID)
	if err != nil {
		t.Fatal(err)
	}
	readyAfter := time.Since(restartAt)
	c.gws[0] = restarted
	c.lb.Add(restarted.ClientAddr)
	// Back: a handshake after the restart began (with the restarted process, the only one).
	allBack := f.WaitUntil(sc.killRecovery, func() bool {
		for _, ac := range f.Clients {
			if conns, _ := ac.Events(); conns[len(conns)-1].At.Before(restartAt) {
				return false
			}
		}
		return true
	})
	backAt := time.Since(t0)

	run(sc.after)
	p.Halt()
	doneAt, complete := traffic.WaitComplete(f, p, sc.settle)
	ps := p.Stats()

	t.Run("the process died of SIGKILL", func(t *testing.T) {
		if ws, ok := victim.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("process state %v, want killed by SIGKILL", victim.Cmd.ProcessState)
		}
	})
	starts := readingFrom(t, restarted.Log.String())
	var reread, whileDead int64
	t.Run("the restarted process reads from the committed offsets, no gap", func(t *testing.T) {
		if got, want := slices.Sorted(maps.Keys(starts)), slices.Sorted(maps.Keys(endsAtKill)); !slices.Equal(got, want) {
			t.Fatalf("the restarted process reads partitions %v, want %v", got, want)
		}
		for part, end := range endsAtKill {
			st, com := starts[part], committed[part]
			switch {
			case com < 0:
				t.Errorf("partition %d: the group %s committed nothing before the kill", part, group)
			case st.deliverFrom != com:
				t.Errorf("partition %d: live delivery starts at %d, the committed offset is %d (a gap of %d records)", part, st.deliverFrom, com, st.deliverFrom-com)
			case com > end:
				t.Errorf("partition %d: committed %d beyond the end at the kill %d", part, com, end)
			case st.from > com:
				t.Errorf("partition %d: the window is refilled from %d, after the committed offset %d", part, st.from, com)
			}
			reread += end - com
			whileDead += endsAtRestart[part] - end
		}
		if whileDead == 0 {
			t.Error("no record was published while the gateway was dead: the test proves nothing")
		}
	})
	mv := traffic.CheckMoves(f.Clients, "", t0)
	t.Run("every client resumes on the restarted process, complete", func(t *testing.T) {
		if !allBack || len(mv.NotBack) > 0 {
			t.Errorf("%d clients not back within %s of the restart:\n  %s", len(mv.NotBack), sc.killRecovery, strings.Join(mv.NotBack[:min(5, len(mv.NotBack))], "\n  "))
		}
		if len(mv.ResumeBad) > 0 {
			t.Errorf("%d handshakes after the restart did not resume COMPLETE, e.g. %s", len(mv.ResumeBad), mv.ResumeBad[0])
		}
	})
	deliveries := checkEveryRecord(t, f, p, ps, complete, sc.settle, t0)
	t.Logf("FIGURES restart %s: %d clients on %s, producer %d accepted of %d at %.0f/s (%d failed), %d deliveries to apps; "+
		"dead %.2fs (%d records published meanwhile), restarted process ready %.2fs after its start, reading from the committed offsets "+
		"(%d records handled before the kill read again), all clients back %.2fs after the kill (p50 %.2fs), all records %.2fs after the kill",
		sc.name, sc.clients, victim.ID, ps.Accepted, ps.Scheduled, ps.Rate, ps.Failed, deliveries,
		restartAt.Sub(t0).Seconds(), whileDead, readyAfter.Seconds(), reread, backAt.Seconds(), mv.Percentile(0.5).Seconds(), doneAt.Sub(t0).Seconds())
}

// readerStart is where a gateway's reader of one partition starts: the window refill from
// `from`, live delivery from `deliverFrom` (the committed offset).
type readerStart struct{ from, deliverFrom int64 }

// readingFrom parses the gateway's "reading partition" log lines.
func readingFrom(t *testing.T, log string) map[int]readerStart {
	t.Helper()
	out := map[int]readerStart{}
	for line := range strings.SplitSeq(log, "\n") {
		var rec struct {
			Msg         string `json:"msg"`
			Partition   int    `json:"partition"`
			From        int64  `json:"from"`
			DeliverFrom int64  `json:"deliverFrom"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "reading partition" {
			out[rec.Partition] = readerStart{rec.From, rec.DeliverFrom}
		}
	}
	return out
}

// partitionEnds lists the end (the next offset) of every partition of the downlink topic.
func (c *cluster) partitionEnds(t *testing.T) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reqs := make([]kafka.OffsetRequest, partitions)
	for i := range reqs {
		reqs[i] = kafka.LastOffsetOf(i)
	}
	kc := &kafka.Client{Addr: kafka.TCP(c.brokers)}
	res, err := kc.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{c.topic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int64{}
	for _, po := range res.Topics[c.topic] {
		if po.Error != nil {
			t.Fatalf("partition %d: %v", po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out
}

// committedOffsets fetches the group's committed offset of every partition (-1: none).
func (c *cluster) committedOffsets(t *testing.T, group string) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kc := &kafka.Client{Addr: kafka.TCP(c.brokers)}
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	res, err := kc.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{c.topic: parts}})
	if err == nil && res.Error != nil {
		err = res.Error
	}
	if err != nil {
		t.Fatal(fmt.Errorf("fetching the offsets of %s: %w", group, err))
	}
	out := map[int]int64{}
	for _, po := range res.Topics[c.topic] {
		out[po.Partition] = po.CommittedOffset
		if po.Error != nil {
			out[po.Partition] = -1
		}
	}
	return out
}
