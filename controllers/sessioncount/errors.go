package sessioncount

// Reason says why a pod's count could not be read: the result label of
// tcpgw_operator_session_reads_total and the text of Events and logs.
type Reason string

const (
	// Unreachable: no connection, or it broke before the whole answer arrived.
	Unreachable Reason = "unreachable"
	// Timeout: no whole answer within Reader.Timeout (a pod that hangs or drips).
	Timeout Reason = "timeout"
	// BadStatus: an answer other than 200 (redirects are not followed).
	BadStatus Reason = "bad_status"
	// TooLarge: a body over Reader.MaxBytes.
	TooLarge Reason = "too_large"
	// Malformed: not a Prometheus text exposition, or a count that is not a credible one.
	Malformed Reason = "malformed"
	// Missing: no tcpgw_sessions gauge (not a gateway, or an incompatible one).
	Missing Reason = "missing"
)

// Reasons are every Reason, in a stable order (the metric's series exist from the start).
func Reasons() []Reason {
	return []Reason{Unreachable, Timeout, BadStatus, TooLarge, Malformed, Missing}
}

// Error is a failed read.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }
