package drain

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
	"github.com/tcpgateway/tcpgateway/test/conformance/wire"
	"github.com/tcpgateway/tcpgateway/test/sdkdriver"
	"github.com/tcpgateway/tcpgateway/test/traffic"
)

// The conformance drivers of the other SDKs (test/conformance/DRIVER.md), as command lines run
// with `sh -c` from the repository root. hack/test.sh sets both after building them
// (hack/java.sh test, hack/ts.sh conformance); unset, that language is skipped, saying so.
const (
	EnvJavaDriver = "TCPGW_JAVA_DRIVER" // e.g. "java -jar sdk/java/driver/target/driver.jar"
	EnvTSDriver   = "TCPGW_TS_DRIVER"   // e.g. "node sdk/ts/dist/src/driver.js"
)

// mixedPerLanguage clients of each SDK; mixedScale is the drain of TestMixedLanguageDrain,
// shorter than scaled's: the test is about what each SDK's application sees, the drain's
// pacing and bounds are TestPreStopDrain's.
const mixedPerLanguage = 24

var mixedScale = scale{
	name: "mixed", clients: 3 * mixedPerLanguage, rate: 120,
	warmup: 2 * time.Second, after: 2 * time.Second,
	drain: config.Drain{
		DeregistrationDelay: dur(300 * time.Millisecond),
		SpreadWindow:        dur(2 * time.Second),
		FlushTimeout:        dur(3 * time.Second),
		HardDeadline:        dur(15 * time.Second),
	},
	lbDeregistration: 200 * time.Millisecond,
	settle:           30 * time.Second,
}

// sdkFleet is one language's clients.
type sdkFleet struct {
	lang  string
	skip  string // why the language is not in the run ("" when it is)
	fleet *traffic.Fleet
}

// Issue 14: Go, Java and TypeScript applications on the same gateways through a preStop drain
// with records flowing through Kafka: for each language, every accepted record arrives once,
// in order per user and group, and the drained gateway's clients resume COMPLETE elsewhere.
// The Go clients use the SDK directly (test/traffic); the Java and TypeScript ones are held by
// one conformance driver process per language.
func TestMixedLanguageDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three gateway processes, two driver processes and a Kafka broker; not in -short")
	}
	sc := mixedScale
	c := newCluster(t, sc, 3)
	n := mixedPerLanguage
	fleets := []*sdkFleet{{lang: "go", fleet: traffic.Connect(t, traffic.FleetOptions{Addr: c.lb.Addr(), Clients: n, Token: c.token, Tag: "drain-test-go"})}}
	for i, l := range []struct{ lang, env string }{{"java", EnvJavaDriver}, {"typescript", EnvTSDriver}} {
		sf := &sdkFleet{lang: l.lang}
		fleets = append(fleets, sf)
		cmd := strings.TrimSpace(os.Getenv(l.env))
		if cmd == "" {
			sf.skip = fmt.Sprintf("%s is unset: no %s conformance driver to run (hack/test.sh sets it after building the SDK)", l.env, l.lang)
			t.Logf("without %s: %s", l.lang, sf.skip)
			continue
		}
		sf.fleet = c.connectDriverFleet(l.lang, cmd, (i+1)*n, n)
	}
	total := 0
	for _, sf := range fleets {
		if sf.fleet != nil {
			total += len(sf.fleet.Clients)
		}
	}
	perGateway := c.waitSessions(total)
	p := traffic.StartProducer(t, traffic.ProducerOptions{Brokers: []string{c.brokers}, Topic: c.topic, Rate: sc.rate, Users: 3 * n})

	victim := c.gws[0]
	d := victim.Config.Drain
	for _, sf := range fleets {
		if sf.fleet != nil && len(sf.fleet.On(victim.ID)) == 0 {
			t.Fatalf("no %s client on %s (sessions per gateway %v): the drain would not move any", sf.lang, victim.ID, perGateway)
		}
	}
	moved := map[string][]*traffic.App{}
	for _, sf := range fleets {
		if sf.fleet != nil {
			moved[sf.lang] = sf.fleet.On(victim.ID)
		}
	}
	run(sc.warmup)

	t0 := time.Now()
	c.lb.Remove(victim.ClientAddr)
	dr := victim.PreStop()
	if err := victim.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	exitCode, exitErr := victim.WaitExit(time.Until(t0.Add(d.TerminationGracePeriod())))
	if !dr.OK() || exitErr != nil || exitCode != 0 {
		t.Errorf("drain: gateway drain -wait exited %d saying %q (err %v); the process exited %d (%v)\n%s",
			dr.ExitCode, dr.Output, dr.Err, exitCode, exitErr, victim.Log.Tail(20))
	}
	run(sc.after)
	p.Halt()
	stopped := time.Now()
	settled := stopped.Add(sc.settle)
	for _, sf := range fleets {
		if sf.fleet != nil {
			traffic.WaitComplete(sf.fleet, p, max(time.Until(settled), 0))
		}
	}
	ps := p.Stats()
	if ps.Accepted == 0 {
		t.Fatal("Kafka accepted no record")
	}

	var figures []string
	for _, sf := range fleets {
		t.Run(sf.lang, func(t *testing.T) {
			if sf.skip != "" {
				t.Skip(sf.skip)
			}
			deliveries := traffic.CheckRecords(t, sf.fleet, p, t0)
			mv := traffic.CheckMoves(moved[sf.lang], victim.ID, t0)
			if len(mv.NotBack) > 0 {
				t.Errorf("%d %s clients of %s never came back elsewhere:\n  %s", len(mv.NotBack), sf.lang, victim.ID, strings.Join(mv.NotBack[:min(5, len(mv.NotBack))], "\n  "))
			}
			if len(mv.ResumeBad) > 0 {
				t.Errorf("%d handshakes after the drain did not resume COMPLETE, e.g. %s", len(mv.ResumeBad), mv.ResumeBad[0])
			}
			for _, ac := range moved[sf.lang] {
				conns, discs := ac.Events()
				if len(discs) == 0 || discs[0].GoAway == nil || discs[0].GoAway.Reason != pb.GoAway_REASON_DRAINING {
					t.Errorf("client %d did not leave %s on a DRAINING GOAWAY: %s", ac.Index, victim.ID, traffic.History(conns, discs, t0))
					break
				}
			}
			traffic.CheckUndisturbed(t, sf.fleet, moved[sf.lang], t0)
			figures = append(figures, fmt.Sprintf("%s: %d clients, %d moved (back p50 %.2fs, max %.2fs), %d deliveries",
				sf.lang, len(sf.fleet.Clients), len(moved[sf.lang]), mv.Percentile(0.5).Seconds(), mv.Last().Seconds(), deliveries))
		})
	}
	t.Logf("FIGURES mixed drain: sessions %v, drained %s; producer %d accepted of %d at %.0f/s (%d failed); all records %.2fs after the producer stopped; %s",
		perGateway, victim.ID, ps.Accepted, ps.Scheduled, ps.Rate, ps.Failed, time.Since(stopped).Seconds(), strings.Join(figures, "; "))
}

// connectDriverFleet starts one driver process (command line cmd) holding n clients, users
// first..first+n-1, connected through the LB; their events feed a traffic.Fleet.
func (c *cluster) connectDriverFleet(lang, cmd string, first, n int) *traffic.Fleet {
	c.t.Helper()
	f := traffic.NewFleet(c.t, first, n)
	apps := map[string]*traffic.App{}
	for _, ac := range f.Clients {
		apps[ac.User] = ac
	}
	var mu sync.Mutex // the reading goroutine reports problems here, the test reads them
	var bad []string
	onEvent := func(e sdkdriver.Received) {
		ac := apps[e.Client]
		if ac == nil {
			return
		}
		switch {
		case e.Event.Event == "push" && e.Push != nil:
			ac.RecordPush(e.Push.Payload)
		case e.Event.Event == "state" && e.State == "connected" && e.Ack != nil:
			ev := traffic.ConnectEvent{At: e.At, Server: e.Ack.ServerID}
			if r := e.Ack.Resume; r != nil {
				ev.Resumed = true
				ev.Status = pb.ResumeResult_Status(pb.ResumeResult_Status_value["STATUS_"+r.Status])
			}
			ac.RecordConnect(ev)
		case e.Event.Event == "state" && e.State == "disconnected":
			ev := traffic.DisconnectEvent{At: e.At, Err: sdkdriver.FailureString(e.Cause)}
			if e.Cause != nil && e.Cause.Kind == wire.KindGoAway {
				ev.GoAway = &pb.GoAway{Reason: pb.GoAway_Reason(pb.GoAway_Reason_value["REASON_"+e.Cause.Reason])}
			}
			ac.RecordDisconnect(ev)
		case e.Event.Event == "state" && e.State == "stopped":
			mu.Lock()
			bad = append(bad, fmt.Sprintf("%s stopped: %s", e.Client, sdkdriver.FailureString(e.Cause)))
			mu.Unlock()
		}
	}
	d := sdkdriver.Start(c.t, []string{"sh", "-c", cmd}, sdkdriver.Options{OnEvent: onEvent})
	c.t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(bad) > 0 {
			c.t.Errorf("%d %s clients stopped before the end, e.g. %s", len(bad), lang, bad[0])
		}
	})
	ids := make([]int64, 0, n)
	for _, ac := range f.Clients {
		ids = append(ids, d.Send(wire.Command{Op: "connect", Client: ac.User, Address: c.lb.Addr(),
			Token: c.token(ac.User, ac.Groups()), ClientVersion: "drain-test-" + lang,
			Reconnect: &wire.Reconnect{InitialMs: 100, MaxMs: 1000}, DeadlineMs: 30000}))
	}
	for i, id := range ids {
		if r := d.Result(id, 40*time.Second); r.Error != nil {
			c.t.Fatalf("%s client %s: connect: %s", lang, f.Clients[i].User, sdkdriver.FailureString(r.Error))
		}
	}
	return f
}
