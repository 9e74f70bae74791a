package server

import (
	"context"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/auth"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Token refresh results: tcpgw_token_refreshes_total{result}, besides the auth reasons of a
// refused token.
const (
	refreshRequested   = "requested"    // REFRESH_REQUEST sent
	refreshOK          = "ok"           // REFRESH accepted, the session's expiry moved
	refreshOtherUser   = "other_user"   // REFRESH with a valid token of another user: refused
	refreshRateLimited = "rate_limited" // REFRESH beyond the session's request rate: refused
	refreshExpired     = "expired"      // no accepted REFRESH by the deadline: closed
)

// expiryMs is t as Unix ms, 0 for the zero time (no expiry).
func expiryMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixMilli(), 1)
}

// refreshTimes are when a token expiring at exp is asked for a refresh and when the session
// closes without one. Pure, for the wheel's check.
func refreshTimes(exp time.Time, lead, grace time.Duration) (ask, deadline time.Time) {
	return exp.Add(-lead), exp.Add(grace)
}

// tokenDue is the token part of the wheel's check on an established session: it sends
// REFRESH_REQUEST once the refresh lead is reached and closes the session with TOKEN_EXPIRED
// at exp + grace. It returns the next time it needs a check (zero: none) and false when it
// closed the session. Its state is two atomics on the conn, so no timer per session.
func (c *conn) tokenDue(now time.Time) (time.Time, bool) {
	expMs := c.tokenExpMs.Load()
	if expMs == 0 {
		return time.Time{}, true
	}
	a := c.srv.cfg.Auth
	ask, deadline := refreshTimes(time.UnixMilli(expMs), a.RefreshLead.Duration, a.RefreshGrace.Duration)
	switch {
	case !now.Before(deadline):
		c.srv.m.TokenRefreshes.WithLabelValues(refreshExpired).Inc()
		c.fail(pb.ErrorCode_ERROR_CODE_TOKEN_EXPIRED, "the token expired and no REFRESH was accepted within "+a.RefreshGrace.String())
		return time.Time{}, false
	case now.Before(ask):
		return ask, true
	case c.refreshAsked.CompareAndSwap(false, true):
		c.askRefresh(expMs)
	}
	return deadline, true
}

// askRefresh sends REFRESH_REQUEST for the token expiring at expMs (the caller set
// refreshAsked).
func (c *conn) askRefresh(expMs int64) {
	a := c.srv.cfg.Auth
	_, deadline := refreshTimes(time.UnixMilli(expMs), a.RefreshLead.Duration, a.RefreshGrace.Duration)
	c.srv.m.TokenRefreshes.WithLabelValues(refreshRequested).Inc()
	c.send(&pb.Frame{Body: &pb.Frame_RefreshRequest{RefreshRequest: &pb.RefreshRequest{
		TokenExpiresAtMs: expMs, DeadlineMs: deadline.UnixMilli(),
	}}})
}

// refresh handles a REFRESH: the new token must verify and name the session's user; then the
// session's expiry becomes the new token's. A refused REFRESH is answered (not fatal): the
// session keeps its old token and deadline. The verification runs on the reader, bounded by
// the handshake timeout, and costs a request token, so REFRESH cannot hammer the verifier.
func (c *conn) refresh(seq uint64, r *pb.Refresh) {
	s := c.srv
	refuse := func(result, message string) {
		s.m.TokenRefreshes.WithLabelValues(result).Inc()
		c.send(&pb.Frame{Seq: seq, Body: &pb.Frame_RefreshAck{RefreshAck: &pb.RefreshAck{
			Code: pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, Message: message,
		}}})
	}
	if !c.allow() {
		refuse(refreshRateLimited, refreshRateLimited)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.limits.HandshakeTimeout.Duration)
	id, err := s.verifier.Verify(ctx, auth.Request{Token: r.Token, DeviceID: c.sess.DeviceID, ClientAddress: c.sess.Remote})
	cancel()
	if err != nil {
		reason := auth.ReasonOf(err)
		refuse(reason, reason)
		return
	}
	if id.UserID != c.sess.UserID {
		refuse(refreshOtherUser, "the token authenticates another user")
		return
	}
	exp := laterExpiry(c.tokenExpMs.Load(), expiryMs(id.ExpiresAt))
	c.tokenExpMs.Store(exp)
	s.m.TokenRefreshes.WithLabelValues(refreshOK).Inc()
	c.send(&pb.Frame{Seq: seq, Body: &pb.Frame_RefreshAck{RefreshAck: &pb.RefreshAck{
		Code: pb.ErrorCode_ERROR_CODE_OK, TokenExpiresAtMs: exp,
	}}})
	// The wheel's next check of this session may be as late as the deadline: a token that is
	// already within the refresh lead (a source that returned the same token) is asked for
	// again now, so that no session is closed without a REFRESH_REQUEST for its token.
	a := s.cfg.Auth
	if ask, _ := refreshTimes(time.UnixMilli(exp), a.RefreshLead.Duration, a.RefreshGrace.Duration); exp != 0 && !s.now().Before(ask) {
		c.askRefresh(exp)
		return
	}
	c.refreshAsked.Store(false)
}

// laterExpiry is the session's expiry after a REFRESH: the later of the current token's and
// the new one's (0: never). A REFRESH never shortens a session (the current token still
// authorizes it until it expires), so the deadline the wheel checks never moves earlier.
func laterExpiry(current, refreshed int64) int64 {
	if current == 0 || refreshed == 0 {
		return 0
	}
	return max(current, refreshed)
}
