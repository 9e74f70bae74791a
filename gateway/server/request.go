package server

import (
	"context"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/uplink"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// codeToProto maps every uplink outcome to its wire code (a test checks the map is complete).
var codeToProto = map[uplink.Code]pb.ErrorCode{
	uplink.CodeOK:              pb.ErrorCode_ERROR_CODE_OK,
	uplink.CodeNoRoute:         pb.ErrorCode_ERROR_CODE_NO_ROUTE,
	uplink.CodeTimeout:         pb.ErrorCode_ERROR_CODE_TIMEOUT,
	uplink.CodeBackendError:    pb.ErrorCode_ERROR_CODE_BACKEND_ERROR,
	uplink.CodeRateLimited:     pb.ErrorCode_ERROR_CODE_RATE_LIMITED,
	uplink.CodeTooManyInFlight: pb.ErrorCode_ERROR_CODE_TOO_MANY_IN_FLIGHT,
	uplink.CodeDraining:        pb.ErrorCode_ERROR_CODE_DRAINING,
}

// request admits an uplink REQUEST and hands it to the worker pool; the reader goes on at once.
func (c *conn) request(seq uint64, req *pb.Request) {
	s := c.srv
	switch {
	case c.refusing():
		// Not forwarded: the client resends it on its next connection.
		c.reject(seq, req.Service, uplink.CodeDraining, "the gateway is draining; retry on the new connection")
		return
	case !c.allow():
		c.reject(seq, req.Service, uplink.CodeRateLimited, "request rate limit exceeded")
		return
	}
	call := uplink.Call{
		Service: req.Service,
		Method:  req.Method,
		Payload: req.Payload,
		Headers: req.Headers,
		Timeout: time.Duration(req.TimeoutMs) * time.Millisecond,
		Identity: uplink.Identity{
			UserID:        c.sess.UserID,
			SessionID:     c.sess.SessionID,
			DeviceID:      c.sess.DeviceID,
			ClientAddress: c.sess.Remote,
			Seq:           seq,
		},
	}
	c.begin()
	job := func() {
		defer c.end()
		res := s.router.Do(context.Background(), call)
		c.respond(seq, res)
	}
	select {
	case s.work <- job:
	default:
		c.end()
		c.reject(seq, req.Service, uplink.CodeTooManyInFlight, "the gateway's uplink workers are all busy")
	}
}

// reject answers a request the gateway refused before calling a backend. (Calls that reach
// the router are counted by its Observe hook.)
func (c *conn) reject(seq uint64, service string, code uplink.Code, msg string) {
	if !c.srv.router.Has(service) {
		service = "" // a client must not mint metric label values with made-up names
	}
	c.srv.m.Requests.WithLabelValues(service, string(code)).Inc()
	c.respond(seq, uplink.Result{Code: code, Message: msg})
}

func (c *conn) respond(seq uint64, res uplink.Result) {
	c.send(&pb.Frame{Seq: seq, Body: &pb.Frame_Response{Response: &pb.Response{
		Code:    codeToProto[res.Code],
		Status:  int32(res.Status),
		Payload: res.Payload,
		Headers: res.Headers,
		Message: res.Message,
	}}})
}

// begin and end bracket an uplink request: the server waits for all of them when draining.
func (c *conn) begin() {
	c.srv.inFlight.Add(1)
	c.srv.m.UplinkInFlight.Inc()
}

func (c *conn) end() {
	c.srv.m.UplinkInFlight.Dec()
	c.srv.inFlight.Done()
}
