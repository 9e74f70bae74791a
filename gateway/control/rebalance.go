package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// RebalancePath is the control socket's rebalance endpoint: POST ?count=N&rate=R asks the
// gateway to move N of its sessions away at R per second (GOAWAY REBALANCE) and answers 202
// with the run's RebalanceStatus at once; with &wait=true it answers 200 once the run ended.
// It changes the pod's state, so, like the drain, it is served only here, never on the admin
// port.
const RebalancePath = "/rebalance"

// Refusal reasons of a rebalance (RebalanceError.Reason); the gateway's server package
// defines them (server.RebalanceRefusal) and the tcpgw_rebalance_requests_total{result} label
// uses the same strings.
const (
	RebalanceRunning  = "running"   // another rebalance is running (409)
	RebalanceDraining = "draining"  // the pod drains (409)
	RebalanceBadCount = "bad_count" // count outside [1, sessions held] or not a number (400)
	RebalanceBadRate  = "bad_rate"  // rate outside [1, 1000] or not a number (400)
)

// RebalanceStatus describes a rebalance run.
type RebalanceStatus struct {
	Count    int   `json:"count"`    // sessions to move
	Rate     int   `json:"rate"`     // GOAWAYs per second
	Sessions int   `json:"sessions"` // sessions the pod held when it started
	WindowMs int64 `json:"windowMs"` // how long the GOAWAYs take: count/rate
	Sent     int   `json:"sent"`     // sessions told to go away so far
	Done     bool  `json:"done"`     // the run ended
}

// RebalanceError is a refused rebalance.
type RebalanceError struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func (e *RebalanceError) Error() string {
	return fmt.Sprintf("rebalance refused (%s): %s", e.Reason, e.Message)
}

// Rebalancer starts a rebalance of count sessions at rate per second; with wait it returns
// once the run ended (or ctx ended). A refusal is a *RebalanceError.
type Rebalancer interface {
	Rebalance(ctx context.Context, count, rate int, wait bool) (RebalanceStatus, error)
}

func handleRebalance(g Gateway) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		count, err := strconv.Atoi(q.Get("count"))
		if err != nil {
			writeRefusal(w, &RebalanceError{RebalanceBadCount, fmt.Sprintf("count %q is not a number", q.Get("count"))})
			return
		}
		rate, err := strconv.Atoi(q.Get("rate"))
		if err != nil {
			writeRefusal(w, &RebalanceError{RebalanceBadRate, fmt.Sprintf("rate %q is not a number", q.Get("rate"))})
			return
		}
		wait := q.Get("wait") == "true"
		// With wait, r's context: a caller that goes away stops the wait, not the run.
		st, err := g.Rebalance(r.Context(), count, rate, wait)
		var re *RebalanceError
		switch {
		case errors.As(err, &re):
			writeRefusal(w, re)
			return
		case err != nil:
			http.Error(w, "rebalance still running: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if !wait {
			w.WriteHeader(http.StatusAccepted)
		}
		_ = json.NewEncoder(w).Encode(st)
	}
}

func writeRefusal(w http.ResponseWriter, e *RebalanceError) {
	code := http.StatusBadRequest
	if e.Reason == RebalanceRunning || e.Reason == RebalanceDraining {
		code = http.StatusConflict
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(e)
}

// Rebalance asks the gateway serving the control socket at path to move count of its sessions
// away at rate per second. Without wait it returns once the run started, with wait once it
// ended (or ctx ended). A refusal is a *RebalanceError whose Reason says why.
func Rebalance(ctx context.Context, path string, count, rate int, wait bool) (RebalanceStatus, error) {
	q := url.Values{"count": {strconv.Itoa(count)}, "rate": {strconv.Itoa(rate)}}
	if wait {
		q.Set("wait", "true")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://control"+RebalancePath+"?"+q.Encode(), nil)
	if err != nil {
		return RebalanceStatus{}, err
	}
	resp, err := socketClient(path).Do(req)
	if err != nil {
		return RebalanceStatus{}, dialError(path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusOK, http.StatusAccepted:
		var st RebalanceStatus
		if err := json.Unmarshal(body, &st); err != nil {
			return RebalanceStatus{}, fmt.Errorf("while reading the gateway's answer: %w", err)
		}
		return st, nil
	case http.StatusBadRequest, http.StatusConflict:
		re := &RebalanceError{}
		if err := json.Unmarshal(body, re); err == nil && re.Reason != "" {
			return RebalanceStatus{}, re
		}
	}
	return RebalanceStatus{}, fmt.Errorf("gateway answered %s: %s", resp.Status, body)
}
