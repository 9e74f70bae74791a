package config

import (
	"os"
	"time"
)

// Defaults, exported so the operator, the CRD schema defaults and the docs quote one source.
const (
	DefaultClientsAddress = ":7000"
	DefaultAdminAddress   = ":9090"
	DefaultControlSocket  = "/var/run/tcpgateway/control.sock"
	// The WebSocket listener's (listen.websocket), when it is on.
	DefaultWebSocketAddress = ":7080"
	DefaultWebSocketPath    = "/tcpgw"

	DefaultMaxConnections         = 100000
	DefaultMaxPendingHandshakes   = 10000
	DefaultMaxFrameBytes          = 65536
	DefaultMaxHandshakeFrameBytes = 8192
	DefaultAddressMaxConnections  = 1000
	DefaultAddressHandshakeRate   = 50.0
	DefaultAddressHandshakeBurst  = 1000
	DefaultHandshakeTimeout       = 5 * time.Second
	DefaultHeartbeatInterval      = 30 * time.Second
	DefaultIdleTimeout            = 90 * time.Second
	DefaultRequestsPerSecond      = 50.0
	DefaultRequestBurst           = 100
	DefaultOutboundQueueFrames    = 1024
	DefaultOutboundQueueBytes     = 1 << 20
	DefaultConnectionBuffer       = 1024
	DefaultUplinkWorkers          = 256
	DefaultPendingAnswers         = 128
	DefaultRefusedAnswers         = 16

	DefaultUserClaim   = "sub"
	DefaultGroupsClaim = "groups"
	DefaultJWTLeeway   = 30 * time.Second

	DefaultWebhookTimeout = 2 * time.Second
	DefaultRefreshLead    = time.Minute
	DefaultRefreshGrace   = 30 * time.Second

	DefaultRouteTimeout     = 5 * time.Second
	DefaultRouteMaxInFlight = 1024

	// The expiry group's timings (gateway/downlink uses these as its defaults).
	// kafka.expiry.maxEntries defaults to replay.maxRecords.
	DefaultExpirySessionTimeout    = 6 * time.Second
	DefaultExpiryHeartbeatInterval = 500 * time.Millisecond
	DefaultExpiryRebalanceTimeout  = 10 * time.Second

	// DefaultEventsQueue bounds the session events waiting for Kafka: a second or two of a
	// reconnect storm's events, each a few hundred bytes (ids are at most 128 bytes).
	DefaultEventsQueue = 4096
	// DefaultKafkaSASLMechanism is the strongest mechanism Kafka offers (and the CRD's
	// default).
	DefaultKafkaSASLMechanism = "SCRAM-SHA-512"

	DefaultDeregistrationDelay = 5 * time.Second
	DefaultSpreadWindow        = 20 * time.Second
	DefaultFlushTimeout        = 5 * time.Second
	DefaultHardDeadline        = 45 * time.Second

	DefaultReplayMaxRecords = 100000
	DefaultReplayMaxAge     = 10 * time.Minute

	DefaultLogLevel  = "info"
	DefaultLogFormat = "json"
)

// Bounds of the derived outbound budget (DefaultOutboundBudget).
const (
	// DefaultOutboundBudgetPerConnection lets every session of a full pod hold one 2 KiB frame
	// unwritten at once, as a push to everyone does.
	DefaultOutboundBudgetPerConnection = 2 << 10
	// MinDefaultOutboundBudget lets a small pod still queue a few clients' full queues.
	MinDefaultOutboundBudget = 64 << 20
)

// DefaultOutboundBudget is limits.outboundBudgetBytes when left out: 2 KiB per connection of
// maxConnections, at least 64 MiB, and never more than every queue full at once (which the
// per-session bounds already guarantee).
func DefaultOutboundBudget(maxConnections, outboundQueueBytes int) int {
	b := max(maxConnections*DefaultOutboundBudgetPerConnection, MinDefaultOutboundBudget)
	return min(b, maxConnections*outboundQueueBytes)
}

// Default fills every zero field with its documented default. It only ever writes zero
// fields, so it is idempotent and never hides a value Validate should reject (a negative
// limit stays negative). ServerID falls back to the host name; see Load for $POD_NAME.
func (c *Config) Default() {
	c.defaults(os.Hostname)
}

// defaults is Default with the host name lookup injected for tests.
func (c *Config) defaults(hostname func() (string, error)) {
	if c.ServerID == "" {
		if h, err := hostname(); err == nil {
			c.ServerID = h
		}
	}
	c.Listen.Default()
	c.Limits.Default()
	setDuration(&c.Auth.RefreshLead, DefaultRefreshLead)
	setDuration(&c.Auth.RefreshGrace, DefaultRefreshGrace)
	if c.Auth.JWT != nil {
		c.Auth.JWT.Default()
	}
	if c.Auth.Webhook != nil {
		c.Auth.Webhook.Default()
	}
	for i := range c.Routes {
		c.Routes[i].Default()
	}
	c.Drain.Default()
	c.Replay.Default()
	c.Kafka.Expiry.Default(c.Replay.MaxRecords)
	setInt(&c.Kafka.EventsQueue, DefaultEventsQueue)
	if c.Kafka.SASL != nil {
		setString(&c.Kafka.SASL.Mechanism, DefaultKafkaSASLMechanism)
	}
	c.Logging.Default()
}

// Default fills the listen addresses; pprof stays off.
func (l *Listen) Default() {
	setString(&l.Clients, DefaultClientsAddress)
	setString(&l.Admin, DefaultAdminAddress)
	setString(&l.Control, DefaultControlSocket)
	if l.TLS != nil {
		setString(&l.TLS.MinVersion, TLS12)
	}
	if w := l.WebSocket; w != nil {
		setString(&w.Address, DefaultWebSocketAddress)
		setString(&w.Path, DefaultWebSocketPath)
		if w.TLS != nil {
			setString(&w.TLS.MinVersion, TLS12)
		}
	}
}

// Default fills the resource limits.
func (l *Limits) Default() {
	setInt(&l.MaxConnections, DefaultMaxConnections)
	setInt(&l.MaxPendingHandshakes, DefaultMaxPendingHandshakes)
	setInt(&l.MaxFrameBytes, DefaultMaxFrameBytes)
	setInt(&l.MaxHandshakeFrameBytes, min(DefaultMaxHandshakeFrameBytes, l.MaxFrameBytes))
	setInt(&l.PerAddress.MaxConnections, DefaultAddressMaxConnections)
	if l.PerAddress.HandshakesPerSecond == 0 {
		l.PerAddress.HandshakesPerSecond = DefaultAddressHandshakeRate
	}
	setInt(&l.PerAddress.HandshakeBurst, DefaultAddressHandshakeBurst)
	setDuration(&l.HandshakeTimeout, DefaultHandshakeTimeout)
	setDuration(&l.HeartbeatInterval, DefaultHeartbeatInterval)
	setDuration(&l.IdleTimeout, DefaultIdleTimeout)
	if l.RequestsPerSecond == 0 {
		l.RequestsPerSecond = DefaultRequestsPerSecond
	}
	setInt(&l.RequestBurst, DefaultRequestBurst)
	setInt(&l.OutboundQueueFrames, DefaultOutboundQueueFrames)
	setInt(&l.OutboundQueueBytes, DefaultOutboundQueueBytes)
	if l.MaxConnections > 0 && l.OutboundQueueBytes > 0 {
		setInt(&l.OutboundBudgetBytes, DefaultOutboundBudget(l.MaxConnections, l.OutboundQueueBytes))
	}
	setInt(&l.ConnectionBufferBytes, DefaultConnectionBuffer)
	setInt(&l.UplinkWorkers, DefaultUplinkWorkers)
	setInt(&l.PendingAnswers, DefaultPendingAnswers)
	setInt(&l.RefusedAnswers, DefaultRefusedAnswers)
}

// Default fills the claim names and leeway. Exported so the auth package can default a
// JWTAuth it was handed on its own.
func (j *JWTAuth) Default() {
	setString(&j.UserClaim, DefaultUserClaim)
	setString(&j.GroupsClaim, DefaultGroupsClaim)
	setDuration(&j.Leeway, DefaultJWTLeeway)
}

// Default fills the call timeout.
func (w *WebhookAuth) Default() {
	setDuration(&w.Timeout, DefaultWebhookTimeout)
}

// Default fills the call timeout and the in-flight bound.
func (r *Route) Default() {
	setDuration(&r.Timeout, DefaultRouteTimeout)
	setInt(&r.MaxInFlight, DefaultRouteMaxInFlight)
}

// Default fills the expiry group's timings, and MaxEntries with replayMaxRecords (the
// caller's replay.maxRecords, defaulted first).
func (e *KafkaExpiry) Default(replayMaxRecords int) {
	setDuration(&e.SessionTimeout, DefaultExpirySessionTimeout)
	setDuration(&e.HeartbeatInterval, DefaultExpiryHeartbeatInterval)
	setDuration(&e.RebalanceTimeout, DefaultExpiryRebalanceTimeout)
	setInt(&e.MaxEntries, replayMaxRecords)
}

// Default fills the drain pacing.
func (d *Drain) Default() {
	setDuration(&d.DeregistrationDelay, DefaultDeregistrationDelay)
	setDuration(&d.SpreadWindow, DefaultSpreadWindow)
	setDuration(&d.FlushTimeout, DefaultFlushTimeout)
	setDuration(&d.HardDeadline, DefaultHardDeadline)
}

// Default fills the replay window bounds.
func (r *Replay) Default() {
	setInt(&r.MaxRecords, DefaultReplayMaxRecords)
	setDuration(&r.MaxAge, DefaultReplayMaxAge)
}

// Default fills the log level and format.
func (l *Logging) Default() {
	setString(&l.Level, DefaultLogLevel)
	setString(&l.Format, DefaultLogFormat)
}

func setString(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setDuration(p *Duration, v time.Duration) {
	if p.Duration == 0 {
		p.Duration = v
	}
}
