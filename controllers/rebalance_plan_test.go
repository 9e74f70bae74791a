package controllers

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/controllers/sessioncount"
)

func counts(n ...int64) []sessioncount.Count {
	out := make([]sessioncount.Count, len(n))
	for i, v := range n {
		out[i] = sessioncount.Count{Pod: "chat-" + string(rune('0'+i)), Sample: sessioncount.Sample{Sessions: v}}
	}
	return out
}

func TestPlanRebalance(t *testing.T) {
	withErr := counts(10, 10)
	withErr[1].Err = &sessioncount.Error{Reason: sessioncount.Timeout, Err: errors.New("hang")}
	draining := counts(30, 0)
	draining[0].Draining = true
	moving := counts(30, 0)
	moving[1].Rebalancing = true
	for _, tc := range []struct {
		name      string
		in        rebalanceInput
		state     string
		imbalance int
		moves     []rebalanceMove
		window    time.Duration
	}{
		{name: "scale-out 2 to 4", in: rebalanceInput{MaxImbalance: 20, Rate: 50, Replicas: 4, Settled: true, Counts: counts(30, 30, 0, 0)},
			state: v1alpha1.RebalanceRebalancing, imbalance: 100,
			moves: []rebalanceMove{{"chat-0", 15, 25}, {"chat-1", 15, 25}}, window: 600 * time.Millisecond},
		{name: "one full pod", in: rebalanceInput{MaxImbalance: 20, Rate: 10, Replicas: 3, Settled: true, Counts: counts(90, 0, 0)},
			state: v1alpha1.RebalanceRebalancing, imbalance: 200,
			moves: []rebalanceMove{{"chat-0", 60, 10}}, window: 6 * time.Second},
		{name: "surplus shares the rate", in: rebalanceInput{MaxImbalance: 20, Rate: 40, Replicas: 4, Settled: true, Counts: counts(70, 40, 10, 0)},
			// mean 30: chat-0 holds 40 of the 50 surplus, chat-1 10.
			state: v1alpha1.RebalanceRebalancing, imbalance: 133,
			moves: []rebalanceMove{{"chat-0", 40, 32}, {"chat-1", 10, 8}}, window: 1250 * time.Millisecond},
		{name: "each pod at least 1/s", in: rebalanceInput{MaxImbalance: 20, Rate: 1, Replicas: 3, Settled: true, Counts: counts(100, 2, 0)},
			state: v1alpha1.RebalanceRebalancing, imbalance: 194,
			moves: []rebalanceMove{{"chat-0", 66, 1}}, window: 66 * time.Second},
		{name: "rate capped per pod", in: rebalanceInput{MaxImbalance: 20, Rate: 10000, Replicas: 2, Settled: true, Counts: counts(5000, 0)},
			state: v1alpha1.RebalanceRebalancing, imbalance: 100,
			moves: []rebalanceMove{{"chat-0", 2500, 1000}}, window: 2500 * time.Millisecond},
		{name: "within the bound", in: rebalanceInput{MaxImbalance: 20, Rate: 50, Replicas: 4, Settled: true, Counts: counts(18, 15, 14, 13)},
			state: v1alpha1.RebalanceBalanced, imbalance: 20},
		{name: "just over the bound", in: rebalanceInput{MaxImbalance: 20, Rate: 50, Replicas: 4, Settled: true, Counts: counts(19, 15, 13, 13)},
			state: v1alpha1.RebalanceRebalancing, imbalance: 27, moves: []rebalanceMove{{"chat-0", 4, 50}}, window: 80 * time.Millisecond},
		{name: "tiny counts round to nothing", in: rebalanceInput{MaxImbalance: 20, Rate: 50, Replicas: 2, Settled: true, Counts: counts(1, 0)},
			state: v1alpha1.RebalanceBalanced, imbalance: 100},
		{name: "no sessions", in: rebalanceInput{MaxImbalance: 20, Rate: 50, Replicas: 3, Settled: true, Counts: counts(0, 0, 0)},
			state: v1alpha1.RebalanceBalanced, imbalance: 0},
		{name: "one pod", in: rebalanceInput{MaxImbalance: 20, Rate: 50, Replicas: 1, Settled: true, Counts: counts(100)},
			state: v1alpha1.RebalanceBalanced, imbalance: 0},
		{name: "rolling out", in: rebalanceInput{MaxImbalance: 20, Rate: 50, Replicas: 4, Settled: false, Counts: counts(30, 30, 0, 0)},
			state: v1alpha1.RebalanceWaiting, imbalance: -1},
		{name: "a pod not ready", in: rebalanceInput{MaxImbalance: 20, Rate: 50, Replicas: 4, Settled: true, Counts: counts(30, 30, 0)},
			state: v1alpha1.RebalanceWaiting, imbalance: -1},
		{name: "a count unknown", in: rebalanceInput{MaxImbalance: 20, Rate: 50, Replicas: 2, Settled: true, Counts: withErr},
			state: v1alpha1.RebalanceWaiting, imbalance: -1},
		{name: "a pod draining", in: rebalanceInput{MaxImbalance: 20, Rate: 50, Replicas: 2, Settled: true, Counts: draining},
			state: v1alpha1.RebalanceWaiting, imbalance: -1},
		{name: "a pod still moving", in: rebalanceInput{MaxImbalance: 20, Rate: 50, Replicas: 2, Settled: true, Counts: moving},
			state: v1alpha1.RebalanceWaiting, imbalance: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planRebalance(tc.in)
			if p.State != tc.state || p.Imbalance != tc.imbalance || !reflect.DeepEqual(p.Moves, tc.moves) || p.Window != tc.window {
				t.Errorf("plan = %+v\nwant state %s, imbalance %d, moves %+v, window %v", p, tc.state, tc.imbalance, tc.moves, tc.window)
			}
			if p.Message == "" {
				t.Error("no message")
			}
		})
	}
}

// Convergence of repeated rebalances, each followed by the moved clients reconnecting through
// a load balancer, for the two kinds of balancer (docs/operator.md#rebalance): rounds until
// every pod is within 20% of even after a scale-out 2 → 4 with 60 and 1000 clients.
// Least-connections puts every reconnect on the emptiest pod: one round. A flow-hash or
// random balancer puts each on any pod with equal chance (the overfull ones included): a few
// rounds (at most 5 with 60 clients, 3 with 1000, in 200 trials each with this seed).
func TestRebalanceConvergence(t *testing.T) {
	for _, tc := range []struct {
		lb        string
		clients   int
		maxRounds int
	}{
		{"least-connections", 60, 1},
		{"least-connections", 1000, 1},
		{"random", 60, 8},
		{"random", 1000, 8},
	} {
		rng := rand.New(rand.NewPCG(1, uint64(tc.clients)))
		worst := 0
		for trial := range 200 {
			pods := []int64{int64(tc.clients / 2), int64(tc.clients - tc.clients/2), 0, 0}
			rounds := 0
			for ; rounds <= 20; rounds++ {
				c := counts(pods...)
				p := planRebalance(rebalanceInput{MaxImbalance: 20, Rate: 50, Replicas: 4, Settled: true, Counts: c})
				if p.State == v1alpha1.RebalanceBalanced {
					break
				}
				if p.State != v1alpha1.RebalanceRebalancing {
					t.Fatalf("%s: state %s", tc.lb, p.State)
				}
				moved := 0
				for _, m := range p.Moves {
					for i := range c {
						if c[i].Pod == m.Pod {
							pods[i] -= int64(m.Count)
						}
					}
					moved += m.Count
				}
				for range moved {
					pods[land(tc.lb, pods, rng)]++
				}
			}
			if rounds > 20 {
				t.Fatalf("%s, %d clients, trial %d: not within 20%% after 20 rounds: %v", tc.lb, tc.clients, trial, pods)
			}
			worst = max(worst, rounds)
		}
		if worst > tc.maxRounds {
			t.Errorf("%s, %d clients: up to %d rounds, want at most %d", tc.lb, tc.clients, worst, tc.maxRounds)
		}
		t.Logf("%s, %d clients: at most %d rounds in 200 trials", tc.lb, tc.clients, worst)
	}
}

// land picks the pod a reconnect goes to.
func land(lb string, pods []int64, rng *rand.Rand) int {
	if lb == "random" {
		return rng.IntN(len(pods))
	}
	best := 0
	for i, n := range pods {
		if n < pods[best] {
			best = i
		}
	}
	return best
}
