//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// Knobs of TestRollingUpdateUnderTrafficLosesNothing: unset, the CI size.
const (
	envRollouts = "TCPGW_E2E_ROLLOUTS" // consecutive rolling updates (default 5)
	envClients  = "TCPGW_E2E_CLIENTS"  // clients through the LB (default trafficClients)
	envRate     = "TCPGW_E2E_RATE"     // records per second (default trafficRate)
)

const defaultRollouts = 5

type knobs struct {
	rollouts, clients int
	rate              float64
}

// parseKnobs reads the knobs from getenv; a value that is not a number in range is an error.
func parseKnobs(getenv func(string) string) (knobs, error) {
	k := knobs{rollouts: defaultRollouts, clients: trafficClients, rate: trafficRate}
	for _, kn := range []struct {
		env      string
		min, max int
		dst      *int
	}{
		{envRollouts, 1, 100, &k.rollouts},
		// The test process holds every client's connection and the LB simulator two more
		// per client: 5000 stays well under the 20000 open files per process.
		{envClients, 1, 5000, &k.clients},
	} {
		if v := getenv(kn.env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < kn.min || n > kn.max {
				return k, fmt.Errorf("%s=%q: want an integer from %d to %d", kn.env, v, kn.min, kn.max)
			}
			*kn.dst = n
		}
	}
	if v := getenv(envRate); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r > 0 && r <= 5000) {
			return k, fmt.Errorf("%s=%q: want records per second above 0, at most 5000", envRate, v)
		}
		k.rate = r
	}
	return k, nil
}

func rolloutKnobs(t *testing.T) knobs {
	t.Helper()
	k, err := parseKnobs(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKnobs(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, tt := range []struct {
		name string
		env  func(string) string
		want knobs
		err  bool
	}{
		{"unset: the CI size", env(), knobs{defaultRollouts, trafficClients, trafficRate}, false},
		{"the long proofs", env(envRollouts, "20", envClients, "1000", envRate, "500"), knobs{20, 1000, 500}, false},
		{"zero rollouts", env(envRollouts, "0"), knobs{}, true},
		{"not a number", env(envClients, "many"), knobs{}, true},
		{"too many clients for the open-file limit", env(envClients, "9000"), knobs{}, true},
		{"negative rate", env(envRate, "-5"), knobs{}, true},
		{"NaN rate", env(envRate, "NaN"), knobs{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseKnobs(tt.env)
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error %v", err, tt.err)
			}
			if !tt.err && got != tt.want {
				t.Fatalf("%+v, want %+v", got, tt.want)
			}
		})
	}
}
