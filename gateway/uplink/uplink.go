// Package uplink forwards client REQUESTs to HTTP backends chosen by service name and turns
// whatever happens into a Result with a typed Code.
//
// It knows nothing of frames or protobuf: the server maps a REQUEST to a Call and a Result back
// to a RESPONSE, so this package can be built and tested before the wire types exist.
package uplink

import "time"

// Call is one uplink request, as the server hands it over after rate limiting and drain checks.
type Call struct {
	// Service selects the route.
	Service string
	// Method is appended to the route URL ("URL/Method") and sent as X-Tcpgw-Method.
	Method string
	// Payload is the HTTP request body, forwarded untouched.
	Payload []byte
	// Headers are forwarded as "X-Tcpgw-Meta-<key>"; invalid names or values are dropped.
	Headers map[string]string
	// Timeout shortens the route's timeout for this call; 0 keeps the route's.
	Timeout time.Duration
	// Identity of the caller, forwarded as X-Tcpgw-* headers.
	Identity Identity
}

// Identity is who made the call. The gateway vouches for it: backends trust these headers
// instead of authenticating clients themselves.
type Identity struct {
	UserID        string
	SessionID     string
	DeviceID      string
	ClientAddress string
	// Seq is the REQUEST frame's seq, forwarded so backends can correlate logs with clients.
	Seq uint64
}

// Result is the outcome of a Call. Status, Payload and Headers are set only when Code is CodeOK;
// Message explains any other code.
type Result struct {
	Code Code
	// Status is the backend's HTTP status. Any status is CodeOK: the app decides what 500 means.
	Status int
	// Payload is the backend's response body.
	Payload []byte
	// Headers are the backend's "X-Tcpgw-Meta-" headers with the prefix removed and the rest
	// lower-cased; nil when there are none.
	Headers map[string]string
	// Message is for humans; it never contains the backend URL.
	Message string
}

// Code is the outcome of a call. Values are stable lower_snake strings because they are used
// as metric labels and mapped 1:1 to the protocol's ErrorCode.
type Code string

const (
	// CodeOK: the backend answered, whatever its HTTP status.
	CodeOK Code = "ok"
	// CodeNoRoute: no route for the service, or a method that cannot name an endpoint.
	CodeNoRoute Code = "no_route"
	// CodeTimeout: the backend did not answer before the call's deadline.
	CodeTimeout Code = "timeout"
	// CodeBackendError: the backend could not be reached, failed at the transport level, or
	// sent a response that does not fit in a frame.
	CodeBackendError Code = "backend_error"
	// CodeRateLimited: the session exceeded its request rate. Decided by the server.
	CodeRateLimited Code = "rate_limited"
	// CodeTooManyInFlight: the route already holds its maximum of calls in flight.
	CodeTooManyInFlight Code = "too_many_in_flight"
	// CodeDraining: the gateway is draining and takes no new requests. Decided by the server.
	CodeDraining Code = "draining"
)

// Codes lists every Code, so metrics can be pre-created and mappings checked for completeness.
func Codes() []Code {
	return []Code{
		CodeOK, CodeNoRoute, CodeTimeout, CodeBackendError,
		CodeRateLimited, CodeTooManyInFlight, CodeDraining,
	}
}
