package config

import (
	"math"
	"strings"
	"testing"
	"time"
)

// validConfig is a defaulted config that passes Validate; each test row breaks one rule.
func validConfig() Config {
	c := Config{
		ServerID: "tcpgw-0",
		Auth:     Auth{JWT: &JWTAuth{HS256SecretFile: "/keys/hs", Issuer: "https://auth.example.com", Audience: "chat"}},
		Routes: []Route{
			{Service: "chat", URL: "http://chat:8080/rpc"},
			{Service: "presence", URL: "https://presence"},
		},
		Kafka: Kafka{Brokers: []string{"kafka:9092"}, DownlinkTopic: "ns.gw.downlink", ReceiptsTopic: "ns.gw.receipts"},
	}
	c.defaults(fixedHostname("unused"))
	return c
}

func TestValidateAcceptsValidConfig(t *testing.T) {
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	j := *c.Auth.JWT
	c.Auth.JWT = &JWTAuth{KeySetFile: "/keys/jwks.json", SkipIssuerCheck: true, SkipAudienceCheck: true,
		UserClaim: j.UserClaim, GroupsClaim: j.GroupsClaim, Leeway: j.Leeway}
	if err := c.Validate(); err != nil {
		t.Fatalf("key set with both claim checks skipped by name rejected: %v", err)
	}
	c.Kafka.TLS = &KafkaTLS{}                                                                 // system roots, no client certificate
	c.Kafka.SASL = &KafkaSASL{Mechanism: "PLAIN", UsernameFile: "/s/u", PasswordFile: "/s/p"} // SASL_SSL
	if err := c.Validate(); err != nil {
		t.Fatalf("kafka.tls with system roots and kafka.sasl rejected: %v", err)
	}
	c.Kafka.TLS = &KafkaTLS{CAFile: "/t/ca.crt", CertFile: "/t/tls.crt", KeyFile: "/t/tls.key", ServerName: "kafka"}
	if err := c.Validate(); err != nil {
		t.Fatalf("kafka.tls with a client certificate rejected: %v", err)
	}
	c.Kafka = Kafka{} // downlink disabled: the expiry block is ignored too
	c.Auth = Auth{Webhook: &WebhookAuth{URL: "https://auth.example.com/verify", Timeout: Duration{time.Second}, CAFile: "/etc/ca.pem"},
		RefreshLead: c.Auth.RefreshLead, RefreshGrace: c.Auth.RefreshGrace}
	c.Routes = nil
	c.Listen = Listen{Clients: "127.0.0.1:0", Admin: "127.0.0.1:0", Control: "/tmp/c.sock", Pprof: "127.0.0.1:0"}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid webhook config rejected: %v", err)
	}
	for _, pprof := range []string{"127.0.0.1:6060", "127.9.8.7:6060", "[::1]:6060"} {
		c.Listen.Pprof = pprof
		if err := c.Validate(); err != nil {
			t.Errorf("listen.pprof %q rejected: %v", pprof, err)
		}
	}
	c.Listen.WebSocket = &ListenWebSocket{Address: "127.0.0.1:0", Path: "/ws/v2",
		AllowedOrigins: []string{"https://app.example.com", "http://localhost:3000", "HTTPS://Upper.Example"}}
	if err := c.Validate(); err != nil {
		t.Errorf("listen.websocket rejected: %v", err)
	}
	c.Listen.Control = "/" + strings.Repeat("d", MaxControlPathBytes-1)
	if err := c.Validate(); err != nil {
		t.Errorf("listen.control of %d bytes rejected: %v", MaxControlPathBytes, err)
	}
}

// ws is a defaulted listen.websocket at address ("" for the default).
func ws(address string) *ListenWebSocket {
	l := Listen{WebSocket: &ListenWebSocket{Address: address}}
	l.Default()
	return l.WebSocket
}

func TestValidateRules(t *testing.T) {
	d := func(v time.Duration) Duration { return Duration{v} }
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string // substring of the joined error, starting with the field path
	}{
		{"server id required", func(c *Config) { c.ServerID = "" }, "serverID: required"},
		{"clients not host:port", func(c *Config) { c.Listen.Clients = "7000" }, `listen.clients: "7000" is not host:port`},
		{"admin port not numeric", func(c *Config) { c.Listen.Admin = ":http" }, "listen.admin: \":http\": port must be a number"},
		{"admin port out of range", func(c *Config) { c.Listen.Admin = ":70000" }, "listen.admin: \":70000\": port must be a number"},
		{"admin collides with clients", func(c *Config) { c.Listen.Admin = "0.0.0.0:7000" }, "listen.admin: \"0.0.0.0:7000\" collides with listen.clients"},
		{"control required", func(c *Config) { c.Listen.Control = "" }, "listen.control: required"},
		{"websocket collides with clients", func(c *Config) { c.Listen.WebSocket = ws(":7000") }, `listen.websocket.address: ":7000" collides with listen.clients`},
		{"websocket collides with admin", func(c *Config) { c.Listen.WebSocket = ws("127.0.0.1:9090") }, `listen.websocket.address: "127.0.0.1:9090" collides with listen.admin`},
		{"websocket not host:port", func(c *Config) { c.Listen.WebSocket = ws("7080") }, `listen.websocket.address: "7080" is not host:port`},
		{"websocket path relative", func(c *Config) { c.Listen.WebSocket = ws(""); c.Listen.WebSocket.Path = "tcpgw" }, `listen.websocket.path: "tcpgw" must start with /`},
		{"websocket path with query", func(c *Config) { c.Listen.WebSocket = ws(""); c.Listen.WebSocket.Path = "/a?b" }, `listen.websocket.path: "/a?b" must be a plain path`},
		{"websocket origin wildcard", func(c *Config) { c.Listen.WebSocket = ws(""); c.Listen.WebSocket.AllowedOrigins = []string{"*"} }, `listen.websocket.allowedOrigins[0]: "*" is not an origin: leave allowedOrigins empty`},
		{"websocket origin with path", func(c *Config) {
			c.Listen.WebSocket = ws("")
			c.Listen.WebSocket.AllowedOrigins = []string{"https://a.example", "https://b.example/"}
		}, `listen.websocket.allowedOrigins[1]: "https://b.example/" is not an origin`},
		{"websocket origin without scheme", func(c *Config) {
			c.Listen.WebSocket = ws("")
			c.Listen.WebSocket.AllowedOrigins = []string{"app.example.com"}
		}, `listen.websocket.allowedOrigins[0]: "app.example.com" is not an origin`},
		{"websocket tls without key", func(c *Config) {
			c.Listen.WebSocket = ws("")
			c.Listen.WebSocket.TLS = &ListenTLS{CertFile: "/t/tls.crt", MinVersion: TLS12}
		}, "listen.websocket.tls.keyFile: required"},
		{"control relative", func(c *Config) { c.Listen.Control = "run/control.sock" }, `listen.control: "run/control.sock" must be an absolute path`},
		{"control a directory", func(c *Config) { c.Listen.Control = "/run/tcpgateway/" }, `listen.control: "/run/tcpgateway/" must be an absolute path to a socket file`},
		{"control too long", func(c *Config) { c.Listen.Control = "/" + strings.Repeat("d", 90) }, "listen.control: \"/ddd"},
		{"pprof on all interfaces", func(c *Config) { c.Listen.Pprof = ":6060" }, `listen.pprof: ":6060" must be a loopback address`},
		{"pprof on a pod address", func(c *Config) { c.Listen.Pprof = "10.0.0.7:6060" }, `listen.pprof: "10.0.0.7:6060" must be a loopback address`},
		{"pprof on any IPv6", func(c *Config) { c.Listen.Pprof = "[::]:6060" }, `listen.pprof: "[::]:6060" must be a loopback address`},
		{"pprof by host name", func(c *Config) { c.Listen.Pprof = "localhost:6060" }, `listen.pprof: "localhost:6060" must be a loopback address`},
		{"pprof not host:port", func(c *Config) { c.Listen.Pprof = "6060" }, `listen.pprof: "6060" is not host:port`},
		{"tls without a certificate", func(c *Config) { c.Listen.TLS = &ListenTLS{KeyFile: "/k", MinVersion: TLS12} }, "listen.tls.certFile: required"},
		{"tls without a key", func(c *Config) { c.Listen.TLS = &ListenTLS{CertFile: "/c", MinVersion: TLS13} }, "listen.tls.keyFile: required"},
		{"tls 1.1", func(c *Config) { c.Listen.TLS = &ListenTLS{CertFile: "/c", KeyFile: "/k", MinVersion: "1.1"} }, `listen.tls.minVersion: "1.1" is not one of ["1.2" "1.3"]`},
		{"max connections", func(c *Config) { c.Limits.MaxConnections = -1 }, "limits.maxConnections: must be positive"},
		{"frame too small", func(c *Config) { c.Limits.MaxFrameBytes = 63 }, "limits.maxFrameBytes: must be between 64 and 16777216"},
		{"frame too large", func(c *Config) { c.Limits.MaxFrameBytes = 16<<20 + 1 }, "limits.maxFrameBytes: must be between 64 and 16777216"},
		{"handshake timeout", func(c *Config) { c.Limits.HandshakeTimeout = d(0) }, "limits.handshakeTimeout: must be positive"},
		{"heartbeat interval", func(c *Config) { c.Limits.HeartbeatInterval = d(-time.Second) }, "limits.heartbeatInterval: must be positive"},
		{"idle not above heartbeat", func(c *Config) { c.Limits.IdleTimeout = d(30 * time.Second) }, "limits.idleTimeout: 30s must be longer than limits.heartbeatInterval 30s"},
		{"requests per second", func(c *Config) { c.Limits.RequestsPerSecond = -1 }, "limits.requestsPerSecond: must be a positive number"},
		{"requests per second NaN", func(c *Config) { c.Limits.RequestsPerSecond = math.NaN() }, "limits.requestsPerSecond: must be a positive number"},
		{"request burst", func(c *Config) { c.Limits.RequestBurst = -5 }, "limits.requestBurst: must be positive"},
		{"outbound queue", func(c *Config) { c.Limits.OutboundQueueFrames = -1 }, "limits.outboundQueueFrames: must be positive"},
		{"outbound queue bytes", func(c *Config) { c.Limits.OutboundQueueBytes = -1 }, "limits.outboundQueueBytes: -1 must be at least limits.maxFrameBytes 65536"},
		{"outbound queue bytes below frame", func(c *Config) { c.Limits.OutboundQueueBytes = 65535 }, "limits.outboundQueueBytes: 65535 must be at least limits.maxFrameBytes 65536"},
		{"uplink workers", func(c *Config) { c.Limits.UplinkWorkers = -1 }, "limits.uplinkWorkers: must be positive"},
		{"pending answers", func(c *Config) { c.Limits.PendingAnswers = -1 }, "limits.pendingAnswers: must be positive"},
		{"refused answers", func(c *Config) { c.Limits.RefusedAnswers = -1 }, "limits.refusedAnswers: must be positive"},
		{"pending handshakes", func(c *Config) { c.Limits.MaxPendingHandshakes = -1 }, "limits.maxPendingHandshakes: must be positive"},
		{"handshake frame above max frame", func(c *Config) { c.Limits.MaxHandshakeFrameBytes = 65537 },
			"limits.maxHandshakeFrameBytes: must be between 64 and limits.maxFrameBytes 65536, got 65537"},
		{"handshake frame too small", func(c *Config) { c.Limits.MaxHandshakeFrameBytes = 63 },
			"limits.maxHandshakeFrameBytes: must be between 64 and limits.maxFrameBytes 65536, got 63"},
		{"address connections", func(c *Config) { c.Limits.PerAddress.MaxConnections = -1 }, "limits.perAddress.maxConnections: must be positive"},
		{"address handshake rate", func(c *Config) { c.Limits.PerAddress.HandshakesPerSecond = -1 }, "limits.perAddress.handshakesPerSecond: must be a positive number, got -1"},
		{"address handshake burst", func(c *Config) { c.Limits.PerAddress.HandshakeBurst = -1 }, "limits.perAddress.handshakeBurst: must be positive"},
		{"outbound budget below one queue", func(c *Config) { c.Limits.OutboundBudgetBytes = 1<<20 - 1 },
			"limits.outboundBudgetBytes: 1048575 must be at least limits.outboundQueueBytes 1048576"},
		{"auth neither", func(c *Config) { c.Auth = Auth{} }, "auth: exactly one of jwt or webhook must be set, got neither"},
		{"auth both", func(c *Config) { c.Auth.Webhook = &WebhookAuth{URL: "http://a", Timeout: d(time.Second)} }, "auth: exactly one of jwt or webhook must be set, got both"},
		{"jwt without key file", func(c *Config) { c.Auth.JWT.HS256SecretFile = "" }, "auth.jwt: at least one of hs256SecretFile, rs256PublicKeyFile or keySetFile"},
		{"jwt without issuer", func(c *Config) { c.Auth.JWT.Issuer = "" }, `auth.jwt.issuer: required: tokens must carry this "iss" (or set skipIssuerCheck: true to accept any)`},
		{"jwt without audience", func(c *Config) { c.Auth.JWT.Audience = "" }, `auth.jwt.audience: required: tokens must carry this "aud" (or set skipAudienceCheck: true to accept any)`},
		{"jwt issuer and skip", func(c *Config) { c.Auth.JWT.SkipIssuerCheck = true }, "auth.jwt.issuer: set together with skipIssuerCheck: choose one"},
		{"jwt audience and skip", func(c *Config) { c.Auth.JWT.SkipAudienceCheck = true }, "auth.jwt.audience: set together with skipAudienceCheck: choose one"},
		{"refresh lead", func(c *Config) { c.Auth.RefreshLead = d(-time.Second) }, "auth.refreshLead: must be positive"},
		{"refresh grace", func(c *Config) { c.Auth.RefreshGrace = d(-time.Second) }, "auth.refreshGrace: must be positive"},
		{"jwt user claim", func(c *Config) { c.Auth.JWT.UserClaim = "" }, "auth.jwt.userClaim: required"},
		{"jwt groups claim", func(c *Config) { c.Auth.JWT.GroupsClaim = "" }, "auth.jwt.groupsClaim: required"},
		{"jwt leeway", func(c *Config) { c.Auth.JWT.Leeway = d(-time.Second) }, "auth.jwt.leeway: must not be negative"},
		{"webhook url relative", func(c *Config) {
			c.Auth = Auth{Webhook: &WebhookAuth{URL: "/verify", Timeout: d(time.Second)}}
		}, `auth.webhook.url: "/verify" must be an absolute http:// or https:// URL`},
		{"webhook url scheme", func(c *Config) {
			c.Auth = Auth{Webhook: &WebhookAuth{URL: "ftp://auth/verify", Timeout: d(time.Second)}}
		}, `auth.webhook.url: "ftp://auth/verify" must be an absolute http:// or https:// URL`},
		{"webhook url required", func(c *Config) {
			c.Auth = Auth{Webhook: &WebhookAuth{Timeout: d(time.Second)}}
		}, "auth.webhook.url: required"},
		{"webhook caFile without https", func(c *Config) {
			c.Auth = Auth{Webhook: &WebhookAuth{URL: "http://auth/verify", Timeout: d(time.Second), CAFile: "/ca.pem"}}
		}, `auth.webhook.caFile: set, but auth.webhook.url "http://auth/verify" is not https://`},
		{"webhook timeout", func(c *Config) {
			c.Auth = Auth{Webhook: &WebhookAuth{URL: "http://a", Timeout: d(0)}}
		}, "auth.webhook.timeout: must be positive"},
		{"route service empty", func(c *Config) { c.Routes[1].Service = "" }, "routes[1].service: required"},
		{"route service pattern", func(c *Config) { c.Routes[1].Service = "-chat" }, `routes[1].service: "-chat" must match`},
		{"route service too long", func(c *Config) { c.Routes[0].Service = strings.Repeat("a", 64) }, "routes[0].service: \"aaaa"},
		{"route service duplicate", func(c *Config) { c.Routes[1].Service = "chat" }, `routes[1].service: duplicate "chat" (first at routes[0])`},
		{"route url relative", func(c *Config) { c.Routes[0].URL = "chat:8080" }, `routes[0].url: "chat:8080" must be an absolute http:// or https:// URL`},
		{"route url query", func(c *Config) { c.Routes[0].URL = "http://chat/rpc?x=1" }, "routes[0].url: \"http://chat/rpc?x=1\" must not have a query or fragment"},
		{"route timeout", func(c *Config) { c.Routes[1].Timeout = d(-1) }, "routes[1].timeout: must be positive"},
		{"route max in flight", func(c *Config) { c.Routes[1].MaxInFlight = -1 }, "routes[1].maxInFlight: must be positive"},
		{"kafka downlink topic", func(c *Config) { c.Kafka.DownlinkTopic = "" }, "kafka.downlinkTopic: required when kafka.brokers is set"},
		{"kafka receipts topic", func(c *Config) { c.Kafka.ReceiptsTopic = "" }, "kafka.receiptsTopic: required when kafka.brokers is set"},
		{"kafka topic name", func(c *Config) { c.Kafka.DownlinkTopic = "ns/gw" }, `kafka.downlinkTopic: "ns/gw" is not a valid Kafka topic name`},
		{"kafka same topics", func(c *Config) { c.Kafka.ReceiptsTopic = c.Kafka.DownlinkTopic }, "kafka.receiptsTopic: must differ from kafka.downlinkTopic"},
		{"kafka events topic same as receipts", func(c *Config) { c.Kafka.EventsTopic = c.Kafka.ReceiptsTopic }, "kafka.eventsTopic: must differ"},
		{"kafka events topic name", func(c *Config) { c.Kafka.EventsTopic = "a b" }, "kafka.eventsTopic: \"a b\" is not a valid Kafka topic name"},
		{"kafka events queue", func(c *Config) { c.Kafka.EventsQueue = -1 }, "kafka.eventsQueue"},
		{"kafka broker", func(c *Config) { c.Kafka.Brokers = append(c.Kafka.Brokers, "kafka") }, `kafka.brokers[1]: "kafka" is not host:port`},
		{"kafka broker without host", func(c *Config) { c.Kafka.Brokers = []string{":9092"} }, `kafka.brokers[0]: ":9092" needs both a host and a non-zero port`},
		{"expiry session timeout", func(c *Config) { c.Kafka.Expiry.SessionTimeout = d(0) },
			"kafka.expiry.sessionTimeout: must be positive, got 0s"},
		{"expiry heartbeat interval", func(c *Config) { c.Kafka.Expiry.HeartbeatInterval = d(0) },
			"kafka.expiry.heartbeatInterval: must be positive, got 0s"},
		{"expiry rebalance timeout", func(c *Config) { c.Kafka.Expiry.RebalanceTimeout = d(-time.Second) },
			"kafka.expiry.rebalanceTimeout: must be positive, got -1s"},
		{"expiry heartbeat not below session timeout", func(c *Config) { c.Kafka.Expiry.HeartbeatInterval = d(6 * time.Second) },
			"kafka.expiry.heartbeatInterval: 6s must be shorter than kafka.expiry.sessionTimeout 6s"},
		{"expiry session timeout below the default heartbeat", func(c *Config) { c.Kafka.Expiry.SessionTimeout = d(400 * time.Millisecond) },
			"kafka.expiry.heartbeatInterval: 500ms must be shorter than kafka.expiry.sessionTimeout 400ms"},
		{"expiry session timeout beyond int32 milliseconds", func(c *Config) { c.Kafka.Expiry.SessionTimeout = d(600 * time.Hour) },
			"kafka.expiry.sessionTimeout: 600h0m0s must be at most 596h31m23.646s: Kafka carries it as int32 milliseconds"},
		{"expiry max entries", func(c *Config) { c.Kafka.Expiry.MaxEntries = -1 }, "kafka.expiry.maxEntries: must be positive, got -1"},
		{"kafka tls cert without key", func(c *Config) { c.Kafka.TLS = &KafkaTLS{CertFile: "/t/tls.crt"} },
			"kafka.tls: certFile and keyFile go together"},
		{"kafka tls key without cert", func(c *Config) { c.Kafka.TLS = &KafkaTLS{CAFile: "/t/ca.crt", KeyFile: "/t/tls.key"} },
			"kafka.tls: certFile and keyFile go together"},
		{"kafka sasl mechanism", func(c *Config) {
			c.Kafka.SASL = &KafkaSASL{Mechanism: "GSSAPI", UsernameFile: "/s/u", PasswordFile: "/s/p"}
		}, `kafka.sasl.mechanism: "GSSAPI" is not one of ["PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512"]`},
		{"kafka sasl mechanism lower case", func(c *Config) {
			c.Kafka.SASL = &KafkaSASL{Mechanism: "plain", UsernameFile: "/s/u", PasswordFile: "/s/p"}
		}, `kafka.sasl.mechanism: "plain" is not one of`},
		{"kafka sasl plain without tls", func(c *Config) {
			c.Kafka.SASL = &KafkaSASL{Mechanism: "PLAIN", UsernameFile: "/s/u", PasswordFile: "/s/p"}
		}, "kafka.sasl.mechanism: PLAIN sends the password as it is: only with kafka.tls"},
		{"kafka sasl username", func(c *Config) { c.Kafka.SASL = &KafkaSASL{Mechanism: "SCRAM-SHA-256", PasswordFile: "/s/p"} },
			"kafka.sasl.usernameFile: required"},
		{"kafka sasl password", func(c *Config) { c.Kafka.SASL = &KafkaSASL{Mechanism: "SCRAM-SHA-512", UsernameFile: "/s/u"} },
			"kafka.sasl.passwordFile: required"},
		{"drain negative", func(c *Config) { c.Drain.FlushTimeout = d(-time.Second) }, "drain.flushTimeout: must not be negative"},
		{"drain hard deadline", func(c *Config) { c.Drain.HardDeadline = d(30 * time.Second) },
			"drain.hardDeadline: 30s must be longer than deregistrationDelay + spreadWindow + flushTimeout = 5s + 20s + 5s = 30s"},
		{"replay records", func(c *Config) { c.Replay.MaxRecords = -1 }, "replay.maxRecords: must be positive"},
		{"replay age", func(c *Config) { c.Replay.MaxAge = d(-time.Minute) }, "replay.maxAge: must be positive"},
		{"log level", func(c *Config) { c.Logging.Level = "verbose" }, `logging.level: "verbose" is not one of ["debug" "info" "warn" "error"]`},
		{"log format", func(c *Config) { c.Logging.Format = "yaml" }, `logging.format: "yaml" is not one of ["json" "text"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate accepted the config, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := validConfig()
	c.Limits.MaxFrameBytes = 1
	c.Auth = Auth{RefreshLead: c.Auth.RefreshLead, RefreshGrace: c.Auth.RefreshGrace}
	c.Routes[1].Service = "chat"
	c.Logging.Format = "xml"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted a config with four problems")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d problems, want 4:\n%v", len(lines), err)
	}
	for i, prefix := range []string{"limits.maxFrameBytes:", "auth:", "routes[1].service:", "logging.format:"} {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("problem %d = %q, want prefix %q", i, lines[i], prefix)
		}
	}
}

func TestValidateUndefaultedConfigFails(t *testing.T) {
	// Validate does not default: a zero config names its missing fields instead of passing.
	var c Config
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "limits.maxFrameBytes") {
		t.Fatalf("err = %v, want it to name limits.maxFrameBytes", err)
	}
}
