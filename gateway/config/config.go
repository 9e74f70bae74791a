// Package config is the gateway's configuration schema: one YAML file (rendered by the operator
// into a ConfigMap) plus a few environment overrides, with defaults and validation.
//
// It is the only gateway package the operator imports, so it depends on nothing but the
// standard library and sigs.k8s.io/yaml.
package config

import "time"

// Config is the whole gateway configuration. Zero values mean "use the default"; Default fills
// them in and Validate explains what is wrong with the rest.
type Config struct {
	// ServerID names this instance in logs, metrics, HandshakeAck.server_id and as its Kafka
	// consumer identity. Default: $POD_NAME, else the host name.
	ServerID string `json:"serverID,omitempty"`

	Listen  Listen  `json:"listen"`
	Limits  Limits  `json:"limits"`
	Auth    Auth    `json:"auth"`
	Routes  []Route `json:"routes,omitempty"`
	Kafka   Kafka   `json:"kafka"`
	Drain   Drain   `json:"drain"`
	Replay  Replay  `json:"replay"`
	Logging Logging `json:"logging"`
}

// Listen holds the addresses the gateway binds. Only Clients and Admin are network
// listeners other pods can reach; nothing served on either changes the gateway's state.
type Listen struct {
	// Clients is the TCP address for client connections. Default ":7000".
	Clients string `json:"clients,omitempty"`
	// Admin is the read-only HTTP address for /healthz, /readyz, /metrics and /status (GET
	// and HEAD only). Default ":9090".
	Admin string `json:"admin,omitempty"`
	// Control is the path of the unix socket through which `gateway drain` (the pod's preStop
	// hook) starts the drain: pod-local, file mode 0600. Absolute, at most MaxControlPathBytes.
	// Default "/var/run/tcpgateway/control.sock".
	Control string `json:"control,omitempty"`
	// RebalanceKeyFile, when set, holds the key (at least 32 bytes) that authenticates the
	// operator's requests to move sessions away: POST /rebalance on the admin port, HMAC-SHA256
	// signed, naming this pod, at most 30s old and never replayed (gateway/rebalance). It is
	// re-read when it changes. A relative path is relative to the config file's folder.
	// Empty (the default): the admin port has no such endpoint (404),
	// and a rebalance starts only from inside the pod (`gateway rebalance`).
	RebalanceKeyFile string `json:"rebalanceKeyFile,omitempty"`
	// Pprof, when set, serves net/http/pprof on this address, which must be a loopback one
	// (127.0.0.1:6060, [::1]:6060): profiles expose memory contents and cost CPU, so they are
	// for whoever is inside the pod (kubectl port-forward), never for the network. Default
	// "" (off).
	Pprof string `json:"pprof,omitempty"`
	// TLS, when set, makes the clients listener speak TLS only: the gateway terminates TLS
	// itself (crypto/tls) instead of a load balancer in front of it. Nil: plaintext.
	TLS *ListenTLS `json:"tls,omitempty"`
	// WebSocket, when set, serves the same protocol over WebSocket (RFC 6455) on a listener
	// of its own, for browsers and other clients that cannot open raw TCP: one binary
	// message carries one length-prefixed frame (docs/protocol.md#websocket). Nil: off.
	WebSocket *ListenWebSocket `json:"websocket,omitempty"`
}

// ListenWebSocket is the WebSocket listener (gateway/server/websocket.go).
type ListenWebSocket struct {
	// Address is the TCP address it binds. Default ":7080".
	Address string `json:"address,omitempty"`
	// Path is the only HTTP path upgraded; any other gets 404. Default "/tcpgw".
	Path string `json:"path,omitempty"`
	// AllowedOrigins lists the origins ("https://app.example.com", scheme://host[:port],
	// compared without regard to case) whose pages may connect. An upgrade request with an
	// Origin header not in the list gets 403. A request without Origin (not a browser: the
	// Go SDK, Node) is accepted, as is any Origin when the list is empty: the check keeps
	// other sites' pages out, it authenticates no one (docs/security.md#websocket).
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
	// TLS, when set, makes the listener speak TLS only (wss://), with the same settings as
	// listen.tls. Nil: plaintext (ws://, or TLS terminated in front of the gateway).
	TLS *ListenTLS `json:"tls,omitempty"`
}

// TLS versions accepted by ListenTLS.MinVersion.
const (
	TLS12 = "1.2"
	TLS13 = "1.3"
)

// ListenTLS is the clients listener's certificate and protocol floor. The files are mounted
// from a kubernetes.io/tls Secret; both are re-read when they change (checked at most once a
// second, on handshakes), so a rotated certificate applies to new connections without a
// restart and without dropping live ones. A pair that fails to load keeps the previous one
// in service.
type ListenTLS struct {
	// CertFile is the PEM certificate chain (leaf first), e.g. /etc/tcpgateway/tls/tls.crt.
	CertFile string `json:"certFile"`
	// KeyFile is the PEM private key of the leaf, e.g. /etc/tcpgateway/tls/tls.key.
	KeyFile string `json:"keyFile"`
	// MinVersion is the lowest TLS version accepted: "1.2" or "1.3". Default "1.2".
	MinVersion string `json:"minVersion,omitempty"`
}

// Limits bound every resource a client can make the gateway spend.
type Limits struct {
	// MaxConnections bounds established sessions (handshake completed); a handshake beyond it
	// is refused with ERROR SERVER_FULL. Connections still awaiting their handshake count
	// against MaxPendingHandshakes instead. Default 100000.
	MaxConnections int `json:"maxConnections,omitempty"`
	// MaxPendingHandshakes bounds connections accepted and still awaiting their handshake;
	// more are refused at once with ERROR SERVER_FULL, so silent connections cannot keep
	// clients from establishing sessions. Default 10000.
	MaxPendingHandshakes int `json:"maxPendingHandshakes,omitempty"`
	// MaxFrameBytes is the largest frame body accepted or sent. Default 65536.
	MaxFrameBytes int `json:"maxFrameBytes,omitempty"`
	// MaxHandshakeFrameBytes is the largest frame body accepted before the handshake
	// completes (room for a handshake with a token); a larger length prefix is refused at
	// once with ERROR FRAME_TOO_LARGE. At most maxFrameBytes. Default 8192.
	MaxHandshakeFrameBytes int `json:"maxHandshakeFrameBytes,omitempty"`
	// PerAddress bounds what one client address can hold and start.
	PerAddress AddressLimits `json:"perAddress"`
	// HandshakeTimeout: a connection must complete its handshake within it. Default 5s.
	HandshakeTimeout Duration `json:"handshakeTimeout,omitempty"`
	// HeartbeatInterval advertised to clients (HandshakeAck.heartbeat_interval_ms). Default 30s.
	HeartbeatInterval Duration `json:"heartbeatInterval,omitempty"`
	// IdleTimeout: a session silent this long is closed. Default 90s (3 heartbeats).
	IdleTimeout Duration `json:"idleTimeout,omitempty"`
	// RequestsPerSecond is each session's sustained uplink request rate (token bucket).
	// Default 50.
	RequestsPerSecond float64 `json:"requestsPerSecond,omitempty"`
	// RequestBurst is the bucket size. Default 100.
	RequestBurst int `json:"requestBurst,omitempty"`
	// OutboundQueueFrames bounds each session's queue of frames not yet written; a client
	// whose queue fills up is closed as a slow consumer. Default 1024.
	OutboundQueueFrames int `json:"outboundQueueFrames,omitempty"`
	// OutboundQueueBytes bounds the same queue in bytes. Default 1048576 (1 MiB).
	OutboundQueueBytes int `json:"outboundQueueBytes,omitempty"`
	// OutboundBudgetBytes bounds the outbound bytes of all sessions together (queued or being
	// written). A send that exceeds it closes the slowest consumers first (the oldest stalled
	// writes) with ERROR SLOW_CONSUMER. Default: DefaultOutboundBudget(maxConnections,
	// outboundQueueBytes), 2 KiB per connection but at least 64 MiB, at most
	// maxConnections × outboundQueueBytes.
	OutboundBudgetBytes int `json:"outboundBudgetBytes,omitempty"`
	// ConnectionBufferBytes sizes each connection's first read buffer and netpoll's smallest
	// buffer node: the bulk of an idle connection's memory (about 7 KiB per idle connection
	// at 1024 against 14 KiB at netpoll's 8 KiB/4 KiB defaults; see docs/benchmarks.md).
	// Larger frames still work: buffers grow by chaining nodes. Process-wide: the first
	// gateway started in a process sets it. Default 1024.
	ConnectionBufferBytes int `json:"connectionBufferBytes,omitempty"`
	// UplinkWorkers bounds the goroutines calling backends, shared by all sessions.
	// Default 256.
	UplinkWorkers int `json:"uplinkWorkers,omitempty"`
	// PendingAnswers bounds the pushes asking for an ack or reply that one session holds as
	// answerable (answered ones kept while there is room, so that a second answer is
	// refused); beyond it expired and answered ones go first, then the oldest, whose answer
	// is then refused and whose publisher gets EXPIRED. Default 128.
	PendingAnswers int `json:"pendingAnswers,omitempty"`
	// RefusedAnswers: a session whose answers were refused (ERROR UNKNOWN_PUSH) more than this
	// many times is closed. Default 16.
	RefusedAnswers int `json:"refusedAnswers,omitempty"`
}

// AddressLimits bound one client address (IPv4 address, or IPv6 /64 prefix: one subscriber's
// allocation) on one gateway pod. The defaults leave room for carrier-grade NAT, where many
// subscribers share one public IPv4 address (see docs/operator.md).
type AddressLimits struct {
	// MaxConnections from one address at once, awaiting their handshake or established; more
	// are refused with ERROR ADDRESS_LIMIT. Default 1000.
	MaxConnections int `json:"maxConnections,omitempty"`
	// HandshakesPerSecond is the sustained rate of handshakes one address may start (a token
	// bucket); a handshake beyond it is refused with ERROR ADDRESS_LIMIT. Default 50.
	HandshakesPerSecond float64 `json:"handshakesPerSecond,omitempty"`
	// HandshakeBurst is the bucket size. Default 1000.
	HandshakeBurst int `json:"handshakeBurst,omitempty"`
}

// Auth selects how handshake tokens are verified: exactly one of JWT or Webhook.
type Auth struct {
	JWT     *JWTAuth     `json:"jwt,omitempty"`
	Webhook *WebhookAuth `json:"webhook,omitempty"`
	// RefreshLead: this long before a session's token expires the gateway sends
	// REFRESH_REQUEST, and the client answers with REFRESH carrying a new token. Default 1m.
	RefreshLead Duration `json:"refreshLead,omitempty"`
	// RefreshGrace: a session whose token expired is closed with ERROR TOKEN_EXPIRED unless a
	// REFRESH was accepted within this long after the expiry (REFRESH_REQUEST.deadline_ms =
	// exp + refreshGrace). Default 30s.
	RefreshGrace Duration `json:"refreshGrace,omitempty"`
}

// JWTAuth verifies tokens locally. Keys are files mounted from a Secret; every file is re-read
// when it changes, so keys rotate without a restart.
//
// Key selection: a token whose header carries a "kid" is checked against the key set's key
// with that kid only, and refused as unknown_key when the set has none; a token without a kid
// is tried against every configured key of its alg (the single-key files and the set's keys).
type JWTAuth struct {
	// HS256SecretFile holds one shared HMAC secret (raw bytes), used for tokens without a kid.
	// Optional.
	HS256SecretFile string `json:"hs256SecretFile,omitempty"`
	// RS256PublicKeyFile holds one PEM RSA public key (PKIX or PKCS#1), used for tokens
	// without a kid. Optional.
	RS256PublicKeyFile string `json:"rs256PublicKeyFile,omitempty"`
	// KeySetFile holds a JSON Web Key Set (RFC 7517): up to 16 keys, each with a unique
	// "kid", HS256 ("kty":"oct") or RS256 ("kty":"RSA"). Rotation with overlap: add the new
	// key, move issuers to it, remove the old key once its tokens have expired. Optional; at
	// least one of the three key sources is required.
	KeySetFile string `json:"keySetFile,omitempty"`
	// Issuer must equal the token's "iss". Required unless SkipIssuerCheck.
	Issuer string `json:"issuer,omitempty"`
	// SkipIssuerCheck accepts a token whatever its "iss" (and without one). Only for keys that
	// no other issuer shares; exclusive with Issuer.
	SkipIssuerCheck bool `json:"skipIssuerCheck,omitempty"`
	// Audience must be in the token's "aud". Required unless SkipAudienceCheck.
	Audience string `json:"audience,omitempty"`
	// SkipAudienceCheck accepts a token whatever its "aud" (and without one), so a token the
	// issuer minted for another service is accepted too. Exclusive with Audience.
	SkipAudienceCheck bool `json:"skipAudienceCheck,omitempty"`
	// UserClaim names the claim holding the user id. Default "sub".
	UserClaim string `json:"userClaim,omitempty"`
	// GroupsClaim names the claim holding the group tags (array of strings). Default "groups".
	GroupsClaim string `json:"groupsClaim,omitempty"`
	// Leeway tolerated on exp/nbf/iat. Default 30s.
	Leeway Duration `json:"leeway,omitempty"`
}

// WebhookAuth delegates verification to an HTTP endpoint.
type WebhookAuth struct {
	// URL receives a POST with {"token","deviceID","clientAddress"} and answers
	// {"allowed":bool,"userID":string,"groups":[string],"reason":string,"expiresAt":int}.
	// expiresAt (Unix seconds, optional) bounds the session like a JWT's exp; without it the
	// session never has to refresh its token.
	URL string `json:"url"`
	// Timeout of one call. Default 2s.
	Timeout Duration `json:"timeout,omitempty"`
	// CAFile is a PEM bundle of CA certificates: when set, the https URL's certificate must
	// chain to one of them, and to nothing else (the system roots are not trusted). Empty:
	// the system roots. Requires an https:// URL. The file is re-read when it changes, so
	// the bundle rotates without a restart. TLS 1.2 or newer either way.
	CAFile string `json:"caFile,omitempty"`
}

// Route sends REQUESTs for one service to one HTTP backend.
type Route struct {
	// Service is matched against Request.service. Unique.
	Service string `json:"service"`
	// URL of the backend; the request goes to URL + "/" + method.
	URL string `json:"url"`
	// Timeout of one call, from the gateway's dispatch to the backend's last byte. Default 5s.
	Timeout Duration `json:"timeout,omitempty"`
	// MaxInFlight bounds concurrent calls on this route; more get TOO_MANY_IN_FLIGHT.
	// Default 1024.
	MaxInFlight int `json:"maxInFlight,omitempty"`
	// H2C speaks HTTP/2 over cleartext to the backend (one multiplexed connection).
	H2C bool `json:"h2c,omitempty"`
}

// Kafka configures downlink delivery and receipts.
type Kafka struct {
	// Brokers is the bootstrap list, host:port. Empty disables downlink.
	Brokers []string `json:"brokers,omitempty"`
	// DownlinkTopic carries records for clients.
	DownlinkTopic string `json:"downlinkTopic,omitempty"`
	// ReceiptsTopic carries acks, replies and expiries back to publishers.
	ReceiptsTopic string `json:"receiptsTopic,omitempty"`
	// EventsTopic, when set, receives a SessionEvent (connected, disconnected, replaced,
	// resumed) for each session, keyed by user id, for backends that track presence. Empty:
	// no events (a gateway run without the operator publishes none unless asked).
	EventsTopic string `json:"eventsTopic,omitempty"`
	// EventsQueue bounds the events waiting for Kafka in memory; when it is full (Kafka slow
	// or down) events are dropped and counted (tcpgw_session_events_dropped_total): the data
	// plane never waits for them. Default 4096.
	EventsQueue int `json:"eventsQueue,omitempty"`
	// EventsOmitRemoteAddress leaves SessionEvent.remote_address empty: client addresses are
	// personal data, and not every consumer of the events topic needs them.
	EventsOmitRemoteAddress bool `json:"eventsOmitRemoteAddress,omitempty"`
	// Expiry tunes the expiry group: the consumer group over the receipts topic through which
	// the pods write EXPIRED receipts for unanswered pushes.
	Expiry KafkaExpiry `json:"expiry"`
	// TLS, when set, makes every connection to the brokers TLS (1.2 or later). Nil: plaintext.
	TLS *KafkaTLS `json:"tls,omitempty"`
	// SASL, when set, authenticates every connection to the brokers (over TLS when TLS is
	// set: SASL_SSL; else SASL_PLAINTEXT, for SCRAM only). Nil: none.
	SASL *KafkaSASL `json:"sasl,omitempty"`
}

// KafkaTLS is the TLS the gateway speaks to the brokers. The files are mounted from Secrets;
// they are read at start (a missing or invalid one fails it) and again for each new broker
// connection, so rotated certificates apply without a restart. A relative path is relative to
// the configuration file's directory.
type KafkaTLS struct {
	// CAFile is a PEM bundle of the certificate authorities trusted for the brokers'
	// certificates. Empty: the system roots.
	CAFile string `json:"caFile,omitempty"`
	// CertFile and KeyFile are a PEM client certificate and its private key, presented when a
	// broker asks for one (mTLS, ssl.client.auth=required). Both or neither.
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
	// ServerName is the name the brokers' certificates must carry. Empty: the host of the
	// address dialled (the bootstrap address, then each broker's advertised host).
	ServerName string `json:"serverName,omitempty"`
}

// KafkaSASL authenticates the gateway to the brokers. Username and password are files
// mounted from a Secret, read at start and again for each new broker connection, so a
// rotated password applies without a restart; one trailing line break is dropped from each.
// A relative path is relative to the configuration file's directory.
type KafkaSASL struct {
	// Mechanism: PLAIN (only with TLS: it sends the password as it is), SCRAM-SHA-256 or
	// SCRAM-SHA-512. Default SCRAM-SHA-512.
	Mechanism string `json:"mechanism,omitempty"`
	// UsernameFile holds the user name. Required.
	UsernameFile string `json:"usernameFile"`
	// PasswordFile holds the password. Required.
	PasswordFile string `json:"passwordFile"`
}

// KafkaExpiry tunes the expiry group ("<receiptsTopic>.expiry"). The broker bounds the session
// timeout with group.min.session.timeout.ms and group.max.session.timeout.ms (6s and 30m by
// default) and refuses a member outside them: the group never forms and no EXPIRED receipt is
// written. Ignored without kafka.brokers.
type KafkaExpiry struct {
	// SessionTimeout: the coordinator declares a silent member dead after this, and only then
	// moves a killed pod's partitions. Default 6s, the smallest a broker accepts by default.
	SessionTimeout Duration `json:"sessionTimeout,omitempty"`
	// HeartbeatInterval: how often a member heartbeats, which is also how soon it notices a
	// rebalance (a drained pod leaving). Shorter than sessionTimeout. Default 500ms.
	HeartbeatInterval Duration `json:"heartbeatInterval,omitempty"`
	// RebalanceTimeout: how long the coordinator waits for every member to rejoin during a
	// rebalance. Default 10s.
	RebalanceTimeout Duration `json:"rebalanceTimeout,omitempty"`
	// MaxEntries bounds the entries (open deliveries and tombstones) a pod holds over the
	// receipts partitions it owns; beyond it receipts are dropped and counted
	// (tcpgw_expiry_dropped_total). Default replay.maxRecords.
	MaxEntries int `json:"maxEntries,omitempty"`
}

// Drain paces a graceful shutdown (the preStop hook `gateway drain`, or SIGTERM).
type Drain struct {
	// DeregistrationDelay: keep accepting while the load balancer notices readiness failed.
	// Default 5s.
	DeregistrationDelay Duration `json:"deregistrationDelay,omitempty"`
	// SpreadWindow: GOAWAYs are spread over this window, in paced batches. Default 20s.
	SpreadWindow Duration `json:"spreadWindow,omitempty"`
	// FlushTimeout: wait this long for in-flight requests and outbound queues. Default 5s.
	FlushTimeout Duration `json:"flushTimeout,omitempty"`
	// HardDeadline: from the start of the drain, force-close whatever remains. Default 45s.
	HardDeadline Duration `json:"hardDeadline,omitempty"`
}

// Replay bounds the in-memory window of recent downlink records used to resume sessions.
type Replay struct {
	// MaxRecords kept. Default 100000.
	MaxRecords int `json:"maxRecords,omitempty"`
	// MaxAge of a kept record. Default 10m.
	MaxAge Duration `json:"maxAge,omitempty"`
}

// Logging configures the structured logger.
type Logging struct {
	// Level: debug, info, warn or error. Default info.
	Level string `json:"level,omitempty"`
	// Format: json or text. Default json.
	Format string `json:"format,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("5s", "1m30s").
type Duration struct{ time.Duration }
