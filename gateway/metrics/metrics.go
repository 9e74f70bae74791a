// Package metrics defines every Prometheus collector the gateway exports, in one place, so
// that names, labels and help texts are consistent and listed in one file (docs/metrics.md
// is written from it).
package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values for the frames and bytes counters.
const (
	In  = "in"
	Out = "out"
)

// Gateway holds the data plane's collectors.
type Gateway struct {
	Connections        prometheus.Gauge
	Sessions           prometheus.Gauge
	ConnectionsRefused *prometheus.CounterVec // reason
	Handshakes         *prometheus.CounterVec // result
	Closes             *prometheus.CounterVec // reason
	Frames             *prometheus.CounterVec // kind, direction
	Bytes              *prometheus.CounterVec // direction
	Writes             prometheus.Counter
	QueueDrops         *prometheus.CounterVec // reason
	Requests           *prometheus.CounterVec // route, code
	UplinkLatency      *prometheus.HistogramVec
	UplinkInFlight     prometheus.Gauge
	Draining           prometheus.Gauge
	// DrainPhase is set by the drain (gateway/app) once per phase.
	DrainPhase *prometheus.GaugeVec
	// Rebalance (gateway/server/rebalance.go).
	RebalanceRequests *prometheus.CounterVec // result
	RebalanceGoAways  prometheus.Counter
	Rebalancing       prometheus.Gauge
	Lingering         prometheus.Gauge
	LingerTimeouts    prometheus.Counter
	AnswersRefused    *prometheus.CounterVec // reason
	TokenRefreshes    *prometheus.CounterVec // result
	// AuthWebhookFailures: calls to the auth webhook that gave no answer, by cause.
	AuthWebhookFailures *prometheus.CounterVec // cause

	// TLS to clients (listen.tls; gateway/server/tls.go, certificate.go).
	TLSHandshakes *prometheus.CounterVec // result
	CertReloads   *prometheus.CounterVec // result
	CertNotAfter  *prometheus.GaugeVec   // file

	// WebSocket listener (listen.websocket; gateway/server/websocket.go).
	WebSocketUpgrades *prometheus.CounterVec // result

	// Limits (gateway/server/limits.go, addresses.go).
	PendingHandshakes prometheus.Gauge
	OutboundBudget    prometheus.Gauge
	OutboundShed      prometheus.Counter
	AddressLimited    *prometheus.CounterVec // limit
	// Read at scrape time from the server (SetSources): exact, and free on the hot path.
	outboundBytes    prometheus.GaugeFunc
	addressesTracked prometheus.GaugeFunc
	sources          atomic.Pointer[Sources]
}

// Sources are read at scrape time; the server sets them once it exists.
type Sources struct {
	OutboundBytes    func() int64
	AddressesTracked func() int
}

// SetSources installs the functions behind the scrape-time gauges.
func (m *Gateway) SetSources(s Sources) { m.sources.Store(&s) }

func (m *Gateway) source(read func(*Sources) float64) func() float64 {
	return func() float64 {
		if s := m.sources.Load(); s != nil {
			return read(s)
		}
		return 0
	}
}

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer) *Gateway {
	m := &Gateway{
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tcpgw_connections", Help: "Open client connections, handshaken or not.",
		}),
		PendingHandshakes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tcpgw_pending_handshakes", Help: "Connections accepted and awaiting their handshake (bounded by limits.maxPendingHandshakes).",
		}),
		OutboundBudget: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tcpgw_outbound_budget_bytes", Help: "limits.outboundBudgetBytes: the bound of tcpgw_outbound_bytes.",
		}),
		OutboundShed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpgw_outbound_shed_total", Help: "Sessions closed with ERROR SLOW_CONSUMER because the outbound budget was exhausted (slowest first).",
		}),
		AddressLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_address_limited_total", Help: "Connections refused with ERROR ADDRESS_LIMIT, by the limit hit: connections or handshake_rate.",
		}, []string{"limit"}),
		Sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tcpgw_sessions", Help: "Registered (handshaken) sessions.",
		}),
		ConnectionsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_connections_refused_total", Help: "Connections refused, by reason: server_full (at the handshake), pending_handshakes, address_limit, draining.",
		}, []string{"reason"}),
		Handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_handshakes_total", Help: "Handshakes by result: ok, or the auth/protocol failure reason.",
		}, []string{"result"}),
		Closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_closes_total", Help: "Closed connections by typed reason.",
		}, []string{"reason"}),
		Frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_frames_total", Help: "Frames by kind and direction (in: from clients, out: to clients).",
		}, []string{"kind", "direction"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_bytes_total", Help: "Frame bytes, length prefix included, by direction.",
		}, []string{"direction"}),
		Writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpgw_socket_writes_total", Help: "Writes to client sockets (flushes, and the downlink's writes without waiting); frames_total{direction=out} / this = frames coalesced per write.",
		}),
		QueueDrops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_outbound_drops_total", Help: "Frames not queued for a client, by reason (slow_consumer, closed).",
		}, []string{"reason"}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_uplink_requests_total", Help: "Uplink requests by route and result code.",
		}, []string{"route", "code"}),
		UplinkLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tcpgw_uplink_duration_seconds",
			Help:    "Uplink request latency from dispatch to the backend's answer, by route and HTTP status (or the error code).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "status"}),
		UplinkInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tcpgw_uplink_in_flight", Help: "Uplink requests being processed.",
		}),
		DrainPhase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tcpgw_drain_phase_seconds",
			Help: "Seconds from the start of the drain to the end of each phase (not_ready, deregistered, goaway, flushed, closed, committed).",
		}, []string{"phase"}),
		Draining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tcpgw_draining", Help: "1 while the gateway drains.",
		}),
		RebalanceRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_rebalance_requests_total",
			Help: "Rebalance requests (gateway rebalance, over the control socket) by result: started, or the refusal: running, draining, bad_count, bad_rate.",
		}, []string{"result"}),
		RebalanceGoAways: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpgw_rebalance_goaways_total", Help: "Sessions a rebalance told to go away (GOAWAY REBALANCE).",
		}),
		Rebalancing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tcpgw_rebalancing", Help: "1 while a rebalance moves sessions away.",
		}),
		Lingering: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tcpgw_connections_lingering", Help: "Connections the gateway closed (FIN sent) waiting, at most 2s, for the peer's FIN.",
		}),
		LingerTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpgw_linger_timeouts_total", Help: "Closed connections whose peer did not close within 2s: closed then (with a reset if its last bytes were unread).",
		}),
		AnswersRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_answers_refused_total",
			Help: "PUSH_ACK and PUSH_REPLY frames refused with ERROR UNKNOWN_PUSH, by reason (unknown, expired, not_asked).",
		}, []string{"reason"}),
		TokenRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_token_refreshes_total",
			Help: "Session token refreshes by result: requested (REFRESH_REQUEST sent), ok, other_user, rate_limited, an auth failure reason, or expired (closed with TOKEN_EXPIRED).",
		}, []string{"result"}),
		TLSHandshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_tls_handshakes_total",
			Help: "TLS handshakes on the clients listener (listen.tls) by result: ok, timeout, not_tls, client_closed, remote_alert, failed.",
		}, []string{"result"}),
		CertReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_tls_certificate_reloads_total",
			Help: "Reloads of the clients listener's certificate and key after their files changed, by result: ok, or failed (the previous pair stays in service).",
		}, []string{"result"}),
		CertNotAfter: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tcpgw_tls_certificate_not_after_seconds",
			Help: "Expiry (Unix seconds) of the certificate the clients listener serves, by certificate file.",
		}, []string{"file"}),
		WebSocketUpgrades: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_websocket_upgrades_total",
			Help: "WebSocket upgrades on listen.websocket by result: ok, timeout, closed, not_websocket (400), not_found (404), forbidden_origin (403), too_large (431), failed.",
		}, []string{"result"}),
		AuthWebhookFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpgw_auth_webhook_failures_total",
			Help: "Auth webhook calls without an answer (handshakes refused as webhook_unavailable), by cause: tls_failed, timeout, unreachable, bad_status, bad_response, canceled.",
		}, []string{"cause"}),
	}
	m.outboundBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tcpgw_outbound_bytes", Help: "Bytes accepted for clients and not yet written, all sessions together (bounded by limits.outboundBudgetBytes).",
	}, m.source(func(s *Sources) float64 { return float64(s.OutboundBytes()) }))
	m.addressesTracked = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tcpgw_addresses_tracked", Help: "Client addresses with per-address state (open connections, or a handshake bucket not yet full again).",
	}, m.source(func(s *Sources) float64 { return float64(s.AddressesTracked()) }))
	reg.MustRegister(m.Connections, m.Sessions, m.ConnectionsRefused, m.Handshakes, m.Closes, m.Frames,
		m.Bytes, m.Writes, m.QueueDrops, m.Requests, m.UplinkLatency, m.UplinkInFlight, m.Draining, m.DrainPhase,
		m.RebalanceRequests, m.RebalanceGoAways, m.Rebalancing,
		m.Lingering, m.LingerTimeouts, m.AnswersRefused,
		m.TokenRefreshes, m.AuthWebhookFailures, m.TLSHandshakes, m.CertReloads, m.CertNotAfter, m.WebSocketUpgrades,
		m.PendingHandshakes, m.OutboundBudget, m.OutboundShed, m.AddressLimited, m.outboundBytes, m.addressesTracked)
	return m
}
