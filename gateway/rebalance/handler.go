package rebalance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ResultStarted is Answer.Result when the pod started moving sessions.
const ResultStarted = "started"

// Answer is the pod's reply to a request.
type Answer struct {
	// Result: ResultStarted; the gateway's refusal (running, draining, bad_count, bad_rate:
	// gateway/server RebalanceRefusal); or a Reason the request was refused for.
	Result  string `json:"result"`
	Message string `json:"message,omitempty"`
	// WindowMs is how long the paced GOAWAYs take, when started.
	WindowMs int64 `json:"windowMs,omitempty"`
}

// readTimeout bounds reading a request's body: a client that drips it holds nothing long.
const readTimeout = 5 * time.Second

// Handler serves POST Path: it verifies the request with v and, when it is accepted, calls
// start, whose Answer it returns (202 when started, 409 when the gateway refused). A refused
// request gets only its reason (401 unauthenticated, stale, replayed, wrong_pod; 400
// invalid; 413 too_large; 429 busy), passed to refused for the metric and the log.
func Handler(v *Verifier, start func(count, rate int) Answer, refused func(error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(readTimeout))
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
		var req Request
		if err == nil {
			req, err = v.Verify(r.Header.Get(Header), body)
		} else {
			err = refuse(Invalid, "reading the body: %v", err)
		}
		if err != nil {
			refused(err)
			var e *Error
			if !errors.As(err, &e) {
				e = &Error{Reason: Invalid, Err: err}
			}
			reply(w, statusOf(e.Reason), Answer{Result: string(e.Reason)})
			return
		}
		a := start(req.Count, req.Rate)
		code := http.StatusAccepted
		if a.Result != ResultStarted {
			code = http.StatusConflict
		}
		reply(w, code, a)
	})
}

func statusOf(r Reason) int {
	switch r {
	case Invalid:
		return http.StatusBadRequest
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case Busy:
		return http.StatusTooManyRequests
	}
	return http.StatusUnauthorized
}

func reply(w http.ResponseWriter, code int, a Answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(a)
}

// maxAnswerBytes bounds the answer the operator reads.
const maxAnswerBytes = 4096

// Send signs req with key, POSTs it to url (the pod's admin address + Path) and returns the
// pod's answer. An answer that is not one (another status, a body that does not decode) is
// an error. client must not follow redirects.
func Send(ctx context.Context, client *http.Client, url string, key []byte, req Request) (Answer, error) {
	body, auth, err := Sign(key, req)
	if err != nil {
		return Answer{}, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Answer{}, err
	}
	hr.Header.Set(Header, auth)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hr)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	var a Answer
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return Answer{}, err
	}
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusConflict, http.StatusUnauthorized, http.StatusBadRequest,
		http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
	default:
		return Answer{}, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	if err := json.Unmarshal(b, &a); err != nil || a.Result == "" {
		return Answer{}, fmt.Errorf("%s answered %s without a result", url, resp.Status)
	}
	return a, nil
}
