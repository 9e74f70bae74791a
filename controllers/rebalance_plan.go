package controllers

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/controllers/sessioncount"
	"github.com/tcpgateway/tcpgateway/gateway/rebalance"
)

// rebalanceInput is what the rebalance decision looks at.
type rebalanceInput struct {
	// MaxImbalance in percent of the mean; Rate in sessions per second for the whole fleet.
	MaxImbalance, Rate int
	// Replicas is spec.replicas; Settled says the StatefulSet runs them all, ready, on its
	// current revision (no rollout, no scaling).
	Replicas int
	Settled  bool
	// Counts of the ready pods (sessioncount.Targets), read just now.
	Counts []sessioncount.Count
}

// rebalanceMove asks one pod to move Count sessions away at Rate per second.
type rebalanceMove struct {
	Pod         string
	Count, Rate int
}

// rebalancePlan is the decision: a state for the status and, when Rebalancing, the moves.
type rebalancePlan struct {
	State, Message string
	// Imbalance is how far above the mean the fullest pod is, in percent; -1 when unknown.
	Imbalance int
	Moves     []rebalanceMove
	// Window is how long the slowest pod's paced GOAWAYs take.
	Window time.Duration
}

// planRebalance decides whether and how to rebalance. Nothing is asked unless every desired
// pod is ready and settled on the current revision, each one's count was read, and none
// drains or still moves sessions: the counts then describe where clients will stay. When the
// fullest pod is more than MaxImbalance above the mean, every pod above ceil(mean) is asked to
// move its surplus, so a rebalance aims at even and the next read is well inside the bound
// (hysteresis: no move while within it, no oscillation around it). The fleet's Rate is shared
// in proportion to the surplus, each pod at least 1/s and at most rebalance.MaxRate.
func planRebalance(in rebalanceInput) rebalancePlan {
	wait := func(format string, a ...any) rebalancePlan {
		return rebalancePlan{State: v1alpha1.RebalanceWaiting, Message: fmt.Sprintf(format, a...), Imbalance: -1}
	}
	if !in.Settled {
		return wait("the StatefulSet is rolling out or scaling")
	}
	if len(in.Counts) != in.Replicas {
		return wait("%d of %d pods ready", len(in.Counts), in.Replicas)
	}
	var total int64
	for _, c := range in.Counts {
		switch {
		case c.Err != nil:
			return wait("the session count of %s is unknown: %v", c.Pod, c.Err)
		case c.Draining:
			return wait("%s is draining", c.Pod)
		case c.Rebalancing:
			return wait("%s is still moving sessions away", c.Pod)
		}
		total += c.Sessions
	}
	if in.Replicas < 2 || total == 0 {
		return rebalancePlan{State: v1alpha1.RebalanceBalanced, Message: describeCounts(in.Counts), Imbalance: 0}
	}
	mean := float64(total) / float64(len(in.Counts))
	var fullest int64
	for _, c := range in.Counts {
		fullest = max(fullest, c.Sessions)
	}
	imbalance := int(math.Round(100 * (float64(fullest) - mean) / mean))
	plan := rebalancePlan{State: v1alpha1.RebalanceBalanced, Message: describeCounts(in.Counts), Imbalance: imbalance}
	if imbalance <= in.MaxImbalance {
		return plan
	}
	target := int64(math.Ceil(mean))
	var surplus int64
	for _, c := range in.Counts {
		if c.Sessions > target {
			plan.Moves = append(plan.Moves, rebalanceMove{Pod: c.Pod, Count: int(c.Sessions - target)})
			surplus += c.Sessions - target
		}
	}
	if len(plan.Moves) == 0 {
		// The fullest pod is above the bound only by rounding (tiny counts): nothing to move.
		return plan
	}
	for i := range plan.Moves {
		m := &plan.Moves[i]
		m.Rate = min(max(1, int(math.Round(float64(in.Rate)*float64(m.Count)/float64(surplus)))), rebalance.MaxRate)
		plan.Window = max(plan.Window, time.Duration(m.Count)*time.Second/time.Duration(m.Rate))
	}
	plan.State = v1alpha1.RebalanceRebalancing
	return plan
}

// describeCounts is "chat-0=30 chat-1=31" in the order given.
func describeCounts(counts []sessioncount.Count) string {
	parts := make([]string, 0, len(counts))
	for _, c := range counts {
		parts = append(parts, fmt.Sprintf("%s=%d", c.Pod, c.Sessions))
	}
	return "sessions: " + strings.Join(parts, " ")
}

// describeMoves is "chat-0 moves 15 at 25/s, chat-1 moves 15 at 25/s" in pod order.
func describeMoves(moves []rebalanceMove) string {
	parts := make([]string, 0, len(moves))
	for _, m := range moves {
		parts = append(parts, fmt.Sprintf("%s moves %d at %d/s", m.Pod, m.Count, m.Rate))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
