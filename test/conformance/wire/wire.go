// Package wire holds the messages of the conformance driver protocol (test/conformance/DRIVER.md):
// one JSON Command per line on a driver's stdin, one JSON Event per line on its stdout. The
// harness and the Go driver share these types so they cannot drift apart; drivers in other
// languages follow DRIVER.md, which these types implement field for field.
package wire

// Command is one line the harness writes to the driver. ID is the harness's; the driver answers
// every command with exactly one Event "result" carrying the same ID. Client names the SDK client
// the command is for (a driver holds any number of them); empty means "c".
type Command struct {
	ID     int64  `json:"id"`
	Op     string `json:"op"`
	Client string `json:"client,omitempty"`

	// connect
	Address       string     `json:"address,omitempty"`
	Token         string     `json:"token,omitempty"`
	Refreshable   bool       `json:"refreshable,omitempty"`
	SessionID     string     `json:"session_id,omitempty"`
	DeviceID      string     `json:"device_id,omitempty"`
	ClientVersion string     `json:"client_version,omitempty"`
	TLS           *TLS       `json:"tls,omitempty"`
	Reconnect     *Reconnect `json:"reconnect,omitempty"`
	NoReconnect   bool       `json:"no_reconnect,omitempty"`
	DedupWindow   int        `json:"dedup_window,omitempty"`
	MaxFrameBytes int        `json:"max_frame_bytes,omitempty"`
	// Resume imports what export_positions returned (capability "positions").
	Resume *Exported `json:"resume,omitempty"`

	// request
	Service   string            `json:"service,omitempty"`
	Method    string            `json:"method,omitempty"`
	Payload   []byte            `json:"payload,omitempty"` // base64 in JSON
	Headers   map[string]string `json:"headers,omitempty"`
	TimeoutMs uint32            `json:"timeout_ms,omitempty"`
	// DeadlineMs bounds how long the driver waits for the answer to this command (request,
	// ping, connect); 0: 30000.
	DeadlineMs int64 `json:"deadline_ms,omitempty"`

	// ack, reply: the push the driver delivered with this message id.
	MessageID string `json:"message_id,omitempty"`
}

// TLS makes a connection TLS. CAPEM empty: the system roots. ServerName empty: the address's
// host.
type TLS struct {
	CAPEM      string `json:"ca_pem,omitempty"`
	ServerName string `json:"server_name,omitempty"`
}

// Reconnect overrides the SDK's reconnect delays (milliseconds; 0 keeps the SDK's default;
// lost_spread_ms -1 means no spread).
type Reconnect struct {
	InitialMs    int64 `json:"initial_ms,omitempty"`
	MaxMs        int64 `json:"max_ms,omitempty"`
	LostSpreadMs int64 `json:"lost_spread_ms,omitempty"`
}

// Event is one line the driver writes.
type Event struct {
	Event  string `json:"event"`
	ID     int64  `json:"id,omitempty"`
	Client string `json:"client,omitempty"`

	// ready
	Driver       string   `json:"driver,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"`

	// result: OK, or Error; with the op's outcome.
	OK        bool      `json:"ok,omitempty"`
	Error     *Failure  `json:"error,omitempty"`
	Response  *Response `json:"response,omitempty"`
	RTTMs     float64   `json:"rtt_ms,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	Positions *Exported `json:"positions,omitempty"`

	// state: "connected" (Ack), "disconnected" (Cause), "stopped" (Cause).
	State string   `json:"state,omitempty"`
	Ack   *Ack     `json:"ack,omitempty"`
	Cause *Failure `json:"cause,omitempty"`

	// push
	Push *Push `json:"push,omitempty"`

	// error: a non-fatal ERROR frame (a refused frame; the session goes on).
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Seq     uint64 `json:"seq,omitempty"`

	// token_fetched: the SDK asked its token source (N-th time for this client).
	N int `json:"n,omitempty"`
}

// Failure kinds (Failure.Kind).
const (
	KindServerError   = "server_error"    // a fatal ERROR frame: Code, Message
	KindGoAway        = "goaway"          // a GOAWAY: Reason, ReconnectDelayMs
	KindFrameTooLarge = "frame_too_large" // a frame above the limit: refused to send, or received (a cause)
	KindConnLost      = "connection_lost" // the connection ended before the answer
	KindClosed        = "closed"          // the app closed the client, or it stopped for good
	KindTimeout       = "timeout"         // deadline_ms passed
	KindTransport     = "transport"       // dial, TLS or I/O failure
	KindTokenSource   = "token_source"    // the token source failed
	KindUnsupported   = "unsupported"     // the driver or SDK does not have this op
	KindBadCommand    = "bad_command"     // the command is malformed, or names an unknown client or push
	// An answer refused by the SDK itself, nothing written (R19).
	KindNotRequested    = "not_requested"    // ack of a push without ack_required, reply to one without reply_expected
	KindAlreadyAnswered = "already_answered" // a second ack (or reply) of the same delivered push
)

// Failure says why something failed or ended.
type Failure struct {
	Kind             string `json:"kind"`
	Code             string `json:"code,omitempty"`   // server_error: ErrorCode name without ERROR_CODE_
	Reason           string `json:"reason,omitempty"` // goaway: DRAINING or REPLACED
	ReconnectDelayMs uint32 `json:"reconnect_delay_ms,omitempty"`
	Message          string `json:"message,omitempty"`
}

// Ack is the HANDSHAKE_ACK as the app sees it.
type Ack struct {
	ProtocolVersion     uint32     `json:"protocol_version"`
	SessionID           string     `json:"session_id"`
	UserID              string     `json:"user_id"`
	ServerID            string     `json:"server_id"`
	HeartbeatIntervalMs uint32     `json:"heartbeat_interval_ms"`
	IdleTimeoutMs       uint32     `json:"idle_timeout_ms"`
	MaxFrameBytes       uint32     `json:"max_frame_bytes"`
	TokenExpiresAtMs    int64      `json:"token_expires_at_ms"`
	Resume              *Resume    `json:"resume,omitempty"`
	Positions           []Position `json:"positions,omitempty"`
}

// Resume is the ResumeResult: Status COMPLETE or NOT_RECOVERED.
type Resume struct {
	Status       string     `json:"status"`
	NotRecovered []Position `json:"not_recovered,omitempty"`
	Rejected     []Position `json:"rejected,omitempty"`
}

// Position of a downlink record.
type Position struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// Push is a PUSH delivered to the app.
type Push struct {
	MessageID     string    `json:"message_id"`
	Payload       []byte    `json:"payload,omitempty"`
	Position      *Position `json:"position,omitempty"`
	AckRequired   bool      `json:"ack_required,omitempty"`
	ReplyExpected bool      `json:"reply_expected,omitempty"`
	ExpiresAtMs   int64     `json:"expires_at_ms,omitempty"`
	CreatedAtMs   int64     `json:"created_at_ms,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
}

// Response is a RESPONSE: Code OK (Status, Payload from the backend) or why not.
type Response struct {
	Code    string            `json:"code"`
	Status  int32             `json:"status,omitempty"`
	Payload []byte            `json:"payload,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Message string            `json:"message,omitempty"`
}

// Exported is what an app stores to resume after a restart (capability "positions").
type Exported struct {
	SessionID   string     `json:"session_id"`
	Positions   []Position `json:"positions"`
	ResumeToken string     `json:"resume_token,omitempty"`
}

// Capabilities a driver may announce in its ready event; scenarios that need one the driver
// lacks are skipped, naming it.
const (
	CapPositions = "positions" // export_positions and connect.resume
	CapWebSocket = "websocket" // connect to ws:// and wss:// addresses
)
