package drain

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

func TestMain(m *testing.M) {
	code := kafkatest.Main(m)
	gwproc.Cleanup()
	os.Exit(code)
}

// Environment knobs.
const (
	// envLong selects the figures instead of the scaled ones.
	envLong = "TCPGW_DRAIN_LONG"
	// envClients and envRate override the number of clients and the records per second.
	envClients = "TCPGW_DRAIN_CLIENTS"
	envRate    = "TCPGW_DRAIN_RATE"
	// envRaceGateways builds the gateway processes with -race (heavier; off by default).
	envRaceGateways = "TCPGW_DRAIN_RACE_GATEWAYS"
)

// scale is the size and timing of one scenario.
type scale struct {
	name    string
	clients int     // SDK clients, spread over the three gateways by the LB
	rate    float64 // records per second pushed to Kafka
	// warmup: producing before the drain (or kill); after: producing after the drained process
	// exited (or after the kill).
	warmup, after time.Duration
	drain         config.Drain
	// lbDeregistration is the LB's delay before a removed backend stops getting new
	// connections; it must be shorter than drain.deregistrationDelay, as in a real cluster.
	lbDeregistration time.Duration
	// held: requests held by the backend across the drain; talkers: clients sending echo
	// requests continuously through the drain.
	held, talkers int
	// settle bounds the wait for the last records after the producer stopped.
	settle time.Duration
	// killRecovery bounds, from the SIGKILL, the time for every client of the killed
	// gateway to be back with every record Kafka accepted before the producer stopped.
	killRecovery time.Duration
}

func dur(d time.Duration) config.Duration { return config.Duration{Duration: d} }

// scaled fits `make test`: a 2-core box running the race detector, a JVM broker and three
// gateways must finish both scenarios in well under two minutes.
var scaled = scale{
	name: "scaled", clients: 300, rate: 200,
	warmup: 3 * time.Second, after: 3 * time.Second,
	drain: config.Drain{
		DeregistrationDelay: dur(500 * time.Millisecond),
		SpreadWindow:        dur(3 * time.Second),
		FlushTimeout:        dur(3 * time.Second),
		HardDeadline:        dur(15 * time.Second),
	},
	lbDeregistration: 300 * time.Millisecond,
	held:             20, talkers: 30,
	settle: 30 * time.Second, killRecovery: 20 * time.Second,
}

// long has the figures and the production drain defaults (gateway/config).
var long = scale{
	name: "long", clients: 1000, rate: 500,
	warmup: 10 * time.Second, after: 10 * time.Second,
	drain: config.Drain{
		DeregistrationDelay: dur(config.DefaultDeregistrationDelay),
		SpreadWindow:        dur(config.DefaultSpreadWindow),
		FlushTimeout:        dur(config.DefaultFlushTimeout),
		HardDeadline:        dur(config.DefaultHardDeadline),
	},
	lbDeregistration: 3 * time.Second,
	held:             50, talkers: 60,
	settle: 60 * time.Second, killRecovery: 30 * time.Second,
}

// currentScale reads the environment knobs.
func currentScale(t *testing.T) scale {
	t.Helper()
	s := scaled
	if os.Getenv(envLong) == "1" {
		s = long
	}
	if v := os.Getenv(envClients); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("%s=%q: want an integer >= 10", envClients, v)
		}
		s.clients = n
	}
	if v := os.Getenv(envRate); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 {
			t.Fatalf("%s=%q: want a positive number", envRate, v)
		}
		s.rate = r
	}
	if testing.Short() {
		t.Skip("starts three gateway processes and a Kafka broker; not in -short")
	}
	return s
}

// buildBinaries compiles cmd/gateway and test/echobackend once per test binary (removed by
// TestMain).
func buildBinaries(t *testing.T) gwproc.Binaries {
	t.Helper()
	return gwproc.Build(t, os.Getenv(envRaceGateways) == "1")
}
