package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func fixedHostname(name string) func() (string, error) {
	return func() (string, error) { return name, nil }
}

func TestDefaultValues(t *testing.T) {
	c := Config{
		Auth:   Auth{JWT: &JWTAuth{HS256SecretFile: "/k"}, Webhook: &WebhookAuth{URL: "http://a"}},
		Routes: []Route{{Service: "a", URL: "http://a"}, {Service: "b", URL: "http://b"}},
	}
	c.defaults(fixedHostname("host-1"))

	d := func(v time.Duration) Duration { return Duration{v} }
	want := Config{
		ServerID: "host-1",
		Listen:   Listen{Clients: ":7000", Admin: ":9090", Control: "/var/run/tcpgateway/control.sock"},
		Limits: Limits{
			MaxConnections: 100000, MaxPendingHandshakes: 10000, MaxFrameBytes: 65536,
			MaxHandshakeFrameBytes: 8192,
			PerAddress:             AddressLimits{MaxConnections: 1000, HandshakesPerSecond: 50, HandshakeBurst: 1000},
			HandshakeTimeout:       d(5 * time.Second), HeartbeatInterval: d(30 * time.Second),
			IdleTimeout: d(90 * time.Second), RequestsPerSecond: 50, RequestBurst: 100,
			OutboundQueueFrames: 1024, OutboundQueueBytes: 1 << 20, UplinkWorkers: 256, PendingAnswers: 128, RefusedAnswers: 16,
			OutboundBudgetBytes:   100000 * 2048,
			ConnectionBufferBytes: 1024,
		},
		Auth: Auth{
			JWT: &JWTAuth{HS256SecretFile: "/k", UserClaim: "sub", GroupsClaim: "groups",
				Leeway: d(30 * time.Second)},
			Webhook:     &WebhookAuth{URL: "http://a", Timeout: d(2 * time.Second)},
			RefreshLead: d(time.Minute), RefreshGrace: d(30 * time.Second),
		},
		Routes: []Route{
			{Service: "a", URL: "http://a", Timeout: d(5 * time.Second), MaxInFlight: 1024},
			{Service: "b", URL: "http://b", Timeout: d(5 * time.Second), MaxInFlight: 1024},
		},
		Kafka: Kafka{EventsQueue: DefaultEventsQueue, Expiry: KafkaExpiry{SessionTimeout: d(6 * time.Second),
			HeartbeatInterval: d(500 * time.Millisecond), RebalanceTimeout: d(10 * time.Second),
			MaxEntries: 100000}},
		Drain: Drain{DeregistrationDelay: d(5 * time.Second), SpreadWindow: d(20 * time.Second),
			FlushTimeout: d(5 * time.Second), HardDeadline: d(45 * time.Second)},
		Replay:  Replay{MaxRecords: 100000, MaxAge: d(10 * time.Minute)},
		Logging: Logging{Level: "info", Format: "json"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaulted config:\n got %+v\nwant %+v", c, want)
	}
}

func TestDefaultOutboundBudget(t *testing.T) {
	for _, tt := range []struct{ conns, queue, want int }{
		{100000, 1 << 20, 100000 * 2048}, // 2 KiB per connection: 195 MiB
		{1000, 1 << 20, 64 << 20},        // at least 64 MiB
		{10, 1 << 20, 10 << 20},          // never above every queue full at once
		{1000000, 1 << 20, 1000000 * 2048},
	} {
		if got := DefaultOutboundBudget(tt.conns, tt.queue); got != tt.want {
			t.Errorf("DefaultOutboundBudget(%d, %d) = %d, want %d", tt.conns, tt.queue, got, tt.want)
		}
	}
	c := Config{Limits: Limits{MaxConnections: 10, OutboundQueueBytes: 1 << 20, MaxFrameBytes: 1024}}
	c.defaults(fixedHostname("h"))
	if c.Limits.OutboundBudgetBytes != 10<<20 || c.Limits.MaxHandshakeFrameBytes != 1024 {
		t.Errorf("derived budget %d, handshake frame %d; want 10 MiB and maxFrameBytes 1024",
			c.Limits.OutboundBudgetBytes, c.Limits.MaxHandshakeFrameBytes)
	}
}

func TestDefaultIsIdempotent(t *testing.T) {
	inputs := map[string]Config{
		"empty": {},
		"jwt":   {Auth: Auth{JWT: &JWTAuth{}}, Routes: []Route{{}}},
		"partial": {
			ServerID: "pod-3",
			Limits:   Limits{MaxFrameBytes: 1024, IdleTimeout: Duration{time.Minute}},
			Auth:     Auth{Webhook: &WebhookAuth{URL: "http://x", Timeout: Duration{time.Second}}},
			Kafka:    Kafka{Expiry: KafkaExpiry{SessionTimeout: Duration{45 * time.Second}}},
		},
	}
	for name, c := range inputs {
		t.Run(name, func(t *testing.T) {
			c.defaults(fixedHostname("h"))
			once := clone(t, c)
			c.defaults(fixedHostname("other"))
			if !reflect.DeepEqual(c, once) {
				t.Errorf("second Default changed the config:\n got %+v\nwant %+v", c, once)
			}
		})
	}
}

func TestDefaultKeepsSetValues(t *testing.T) {
	c := Config{
		ServerID: "mine",
		Limits:   Limits{MaxFrameBytes: -1, RequestsPerSecond: 0.5},
		Logging:  Logging{Level: "debug"},
	}
	c.defaults(fixedHostname("host"))
	if c.ServerID != "mine" || c.Limits.MaxFrameBytes != -1 || c.Limits.RequestsPerSecond != 0.5 ||
		c.Logging.Level != "debug" {
		t.Errorf("Default overwrote set values: %+v", c)
	}
}

// kafka.expiry.maxEntries follows replay.maxRecords, whether that is set or defaulted.
func TestDefaultExpiryMaxEntriesFollowsReplay(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want int
	}{
		{"both defaulted", Config{}, DefaultReplayMaxRecords},
		{"replay set", Config{Replay: Replay{MaxRecords: 5000}}, 5000},
		{"both set", Config{Replay: Replay{MaxRecords: 5000}, Kafka: Kafka{Expiry: KafkaExpiry{MaxEntries: 700}}}, 700},
	}
	for _, tt := range tests {
		c := tt.in
		c.defaults(fixedHostname("h"))
		if c.Kafka.Expiry.MaxEntries != tt.want {
			t.Errorf("%s: kafka.expiry.maxEntries = %d, want %d", tt.name, c.Kafka.Expiry.MaxEntries, tt.want)
		}
	}
}

func TestDefaultHostnameFailureLeavesServerIDEmpty(t *testing.T) {
	var c Config
	c.defaults(func() (string, error) { return "", errors.New("no hostname") })
	if c.ServerID != "" {
		t.Errorf("ServerID = %q, want empty so Validate reports it", c.ServerID)
	}
}

func TestDefaultUsesHostname(t *testing.T) {
	var c Config
	c.Default()
	if c.ServerID == "" {
		t.Error("Default left ServerID empty on a machine with a host name")
	}
}

// clone deep-copies a Config through its own JSON encoding.
func clone(t *testing.T, c Config) Config {
	t.Helper()
	var out Config
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// listen.tls stays off unless set; when set, its version floor defaults to TLS 1.2.
func TestDefaultListenTLS(t *testing.T) {
	var off Listen
	off.Default()
	if off.TLS != nil {
		t.Errorf("Default turned TLS on: %+v", off.TLS)
	}
	on := Listen{TLS: &ListenTLS{CertFile: "/c", KeyFile: "/k"}}
	on.Default()
	if on.TLS.MinVersion != TLS12 {
		t.Errorf("minVersion %q, want %q", on.TLS.MinVersion, TLS12)
	}
	on.TLS.MinVersion = TLS13
	on.Default()
	if on.TLS.MinVersion != TLS13 {
		t.Errorf("Default overwrote minVersion 1.3 with %q", on.TLS.MinVersion)
	}
}
