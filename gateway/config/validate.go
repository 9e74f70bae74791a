package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Bounds checked by Validate.
const (
	// MinMaxFrameBytes leaves room for a handshake with a token; below it nothing works.
	MinMaxFrameBytes = 64
	// MaxMaxFrameBytes caps one frame at 16 MiB: the gateway allocates a frame before it
	// decodes it, so this is also the largest allocation a single client can cause.
	MaxMaxFrameBytes = 16 << 20
	// maxTopicLength is Kafka's limit on topic names.
	maxTopicLength = 249
	// maxKafkaGroupDuration (596h31m23.646s) bounds the expiry group's timings: Kafka carries
	// them as int32 milliseconds, and the client refuses to start the group beyond.
	maxKafkaGroupDuration = (math.MaxInt32 - 1) * time.Millisecond
	// MaxControlPathBytes bounds listen.control: a unix socket path holds at most 107 bytes,
	// and the gateway first binds the socket in a private directory beside it
	// (gateway/control), whose name adds up to 15 bytes.
	MaxControlPathBytes = 90
)

var (
	serviceRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)
	topicRE   = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

	logLevels = []string{"debug", "info", "warn", "error"}
	// kafkaSASLMechanisms are the SASL mechanisms the gateway speaks (kafka-go's).
	kafkaSASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
	logFormats          = []string{"json", "text"}
)

// Validate reports every problem at once (joined with errors.Join), each prefixed with the
// YAML path of the field, so one failed rollout shows the whole list. It expects a defaulted
// Config: call Default first, as Load does.
func (c *Config) Validate() error {
	var v validator
	if c.ServerID == "" {
		v.addf("serverID", "required (set it, or POD_NAME, or TCPGW_SERVER_ID)")
	}
	c.validateListen(&v)
	c.validateLimits(&v)
	c.validateAuth(&v)
	c.validateRoutes(&v)
	c.validateKafka(&v)
	c.validateDrain(&v)
	c.validateReplay(&v)
	c.validateLogging(&v)
	return errors.Join(v.errs...)
}

// validator collects problems; its zero value is ready to use.
type validator struct{ errs []error }

func (v *validator) addf(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (v *validator) positiveInt(path string, n int) {
	if n <= 0 {
		v.addf(path, "must be positive, got %d", n)
	}
}

func (v *validator) positiveDuration(path string, d Duration) {
	if d.Duration <= 0 {
		v.addf(path, "must be positive, got %s", d.Duration)
	}
}

func (v *validator) nonNegativeDuration(path string, d Duration) {
	if d.Duration < 0 {
		v.addf(path, "must not be negative, got %s", d.Duration)
	}
}

func (v *validator) oneOf(path, got string, allowed []string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	v.addf(path, "%q is not one of %q", got, allowed)
}

// httpURL checks that s is an absolute http or https URL with a host.
func (v *validator) httpURL(path, s string) {
	if s == "" {
		v.addf(path, "required")
		return
	}
	u, err := url.Parse(s)
	if err != nil {
		v.addf(path, "invalid URL %q: %v", s, err)
		return
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.addf(path, "%q must be an absolute http:// or https:// URL", s)
	}
}

// hostPort checks a listen address: host may be empty (all interfaces), the port must be a
// number (0 asks the kernel for a free port, which tests use).
func (v *validator) hostPort(path, addr string) (host string, port int, ok bool) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		v.addf(path, "%q is not host:port: %v", addr, err)
		return "", 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		v.addf(path, "%q: port must be a number from 0 to 65535", addr)
		return "", 0, false
	}
	return h, n, true
}

func (c *Config) validateListen(v *validator) {
	ch, cp, cok := v.hostPort("listen.clients", c.Listen.Clients)
	ah, ap, aok := v.hostPort("listen.admin", c.Listen.Admin)
	if cok && aok && cp != 0 && cp == ap && (ch == ah || ch == "" || ah == "") {
		v.addf("listen.admin", "%q collides with listen.clients %q", c.Listen.Admin, c.Listen.Clients)
	}
	switch ctl := c.Listen.Control; {
	case ctl == "":
		v.addf("listen.control", "required")
	case !filepath.IsAbs(ctl) || strings.HasSuffix(ctl, "/"):
		v.addf("listen.control", "%q must be an absolute path to a socket file", ctl)
	case len(ctl) > MaxControlPathBytes:
		v.addf("listen.control", "%q is %d bytes, at most %d: unix socket paths are short", ctl, len(ctl), MaxControlPathBytes)
	}
	if p := c.Listen.Pprof; p != "" {
		if h, _, ok := v.hostPort("listen.pprof", p); ok {
			if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
				v.addf("listen.pprof", "%q must be a loopback address such as 127.0.0.1:6060: profiles "+
					"expose memory contents and cost CPU, so only someone inside the pod may fetch them", p)
			}
		}
	}
	if t := c.Listen.TLS; t != nil {
		if t.CertFile == "" {
			v.addf("listen.tls.certFile", "required")
		}
		if t.KeyFile == "" {
			v.addf("listen.tls.keyFile", "required")
		}
		v.oneOf("listen.tls.minVersion", t.MinVersion, []string{TLS12, TLS13})
	}
	if w := c.Listen.WebSocket; w != nil {
		validateWebSocket(v, w)
		wh, wp, wok := v.hostPort("listen.websocket.address", w.Address)
		for _, other := range []struct {
			name, host string
			port       int
			ok         bool
		}{
			{"listen.clients", ch, cp, cok}, {"listen.admin", ah, ap, aok},
		} {
			if wok && other.ok && wp != 0 && wp == other.port && (wh == other.host || wh == "" || other.host == "") {
				v.addf("listen.websocket.address", "%q collides with %s", w.Address, other.name)
			}
		}
	}
}

// MaxWebSocketPathBytes bounds listen.websocket.path.
const MaxWebSocketPathBytes = 256

func validateWebSocket(v *validator, w *ListenWebSocket) {
	switch p := w.Path; {
	case !strings.HasPrefix(p, "/"):
		v.addf("listen.websocket.path", "%q must start with /", p)
	case len(p) > MaxWebSocketPathBytes:
		v.addf("listen.websocket.path", "%q is longer than %d bytes", p, MaxWebSocketPathBytes)
	case strings.ContainsAny(p, "?# \t\r\n"):
		v.addf("listen.websocket.path", "%q must be a plain path: no query, fragment or spaces", p)
	}
	for i, o := range w.AllowedOrigins {
		if err := CheckOrigin(o); err != nil {
			v.addf(fmt.Sprintf("listen.websocket.allowedOrigins[%d]", i), "%v", err)
		}
	}
	if t := w.TLS; t != nil {
		if t.CertFile == "" {
			v.addf("listen.websocket.tls.certFile", "required")
		}
		if t.KeyFile == "" {
			v.addf("listen.websocket.tls.keyFile", "required")
		}
		v.oneOf("listen.websocket.tls.minVersion", t.MinVersion, []string{TLS12, TLS13})
	}
}

// CheckOrigin says why o is not an origin as browsers send it in the Origin header:
// scheme://host[:port], nothing more. The operator's admission checks call it too.
func CheckOrigin(o string) error {
	if o == "*" {
		return errors.New(`"*" is not an origin: leave allowedOrigins empty to accept every origin`)
	}
	u, err := url.Parse(o)
	if err != nil {
		return fmt.Errorf("%q is not an origin: %v", o, err)
	}
	if u.Scheme == "" || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an origin: want scheme://host[:port], e.g. https://app.example.com", o)
	}
	return nil
}

func (c *Config) validateLimits(v *validator) {
	l := c.Limits
	v.positiveInt("limits.maxConnections", l.MaxConnections)
	if l.MaxFrameBytes < MinMaxFrameBytes || l.MaxFrameBytes > MaxMaxFrameBytes {
		v.addf("limits.maxFrameBytes", "must be between %d and %d (16 MiB), got %d",
			MinMaxFrameBytes, MaxMaxFrameBytes, l.MaxFrameBytes)
	}
	v.positiveInt("limits.maxPendingHandshakes", l.MaxPendingHandshakes)
	upper := l.MaxFrameBytes
	if upper < MinMaxFrameBytes || upper > MaxMaxFrameBytes {
		upper = MaxMaxFrameBytes // maxFrameBytes itself is reported above
	}
	if l.MaxHandshakeFrameBytes < MinMaxFrameBytes || l.MaxHandshakeFrameBytes > upper {
		v.addf("limits.maxHandshakeFrameBytes", "must be between %d and limits.maxFrameBytes %d, got %d",
			MinMaxFrameBytes, l.MaxFrameBytes, l.MaxHandshakeFrameBytes)
	}
	v.positiveInt("limits.perAddress.maxConnections", l.PerAddress.MaxConnections)
	if r := l.PerAddress.HandshakesPerSecond; math.IsNaN(r) || math.IsInf(r, 0) || r <= 0 {
		v.addf("limits.perAddress.handshakesPerSecond", "must be a positive number, got %v", r)
	}
	v.positiveInt("limits.perAddress.handshakeBurst", l.PerAddress.HandshakeBurst)
	v.positiveDuration("limits.handshakeTimeout", l.HandshakeTimeout)
	v.positiveDuration("limits.heartbeatInterval", l.HeartbeatInterval)
	if l.IdleTimeout.Duration <= l.HeartbeatInterval.Duration {
		v.addf("limits.idleTimeout", "%s must be longer than limits.heartbeatInterval %s, "+
			"or healthy clients are closed between two heartbeats",
			l.IdleTimeout.Duration, l.HeartbeatInterval.Duration)
	}
	if math.IsNaN(l.RequestsPerSecond) || math.IsInf(l.RequestsPerSecond, 0) || l.RequestsPerSecond <= 0 {
		v.addf("limits.requestsPerSecond", "must be a positive number, got %v", l.RequestsPerSecond)
	}
	v.positiveInt("limits.requestBurst", l.RequestBurst)
	v.positiveInt("limits.outboundQueueFrames", l.OutboundQueueFrames)
	if l.OutboundQueueBytes < l.MaxFrameBytes {
		v.addf("limits.outboundQueueBytes", "%d must be at least limits.maxFrameBytes %d, or one "+
			"full-size frame closes the client as a slow consumer", l.OutboundQueueBytes, l.MaxFrameBytes)
	}
	if l.OutboundBudgetBytes < l.OutboundQueueBytes {
		v.addf("limits.outboundBudgetBytes", "%d must be at least limits.outboundQueueBytes %d, or one "+
			"client's full queue exhausts the budget of the whole pod", l.OutboundBudgetBytes, l.OutboundQueueBytes)
	}
	v.positiveInt("limits.uplinkWorkers", l.UplinkWorkers)
	v.positiveInt("limits.pendingAnswers", l.PendingAnswers)
	v.positiveInt("limits.refusedAnswers", l.RefusedAnswers)
	if l.ConnectionBufferBytes < 512 || l.ConnectionBufferBytes > 65536 {
		v.addf("limits.connectionBufferBytes", "%d must be between 512 and 65536", l.ConnectionBufferBytes)
	}
}

func (c *Config) validateAuth(v *validator) {
	a := c.Auth
	switch {
	case a.JWT == nil && a.Webhook == nil:
		v.addf("auth", "exactly one of jwt or webhook must be set, got neither")
	case a.JWT != nil && a.Webhook != nil:
		v.addf("auth", "exactly one of jwt or webhook must be set, got both")
	}
	v.positiveDuration("auth.refreshLead", a.RefreshLead)
	v.positiveDuration("auth.refreshGrace", a.RefreshGrace)
	if j := a.JWT; j != nil {
		if j.HS256SecretFile == "" && j.RS256PublicKeyFile == "" && j.KeySetFile == "" {
			v.addf("auth.jwt", "at least one of hs256SecretFile, rs256PublicKeyFile or keySetFile must be set")
		}
		requiredUnlessSkipped(v, "auth.jwt.issuer", j.Issuer, "skipIssuerCheck", j.SkipIssuerCheck, "iss")
		requiredUnlessSkipped(v, "auth.jwt.audience", j.Audience, "skipAudienceCheck", j.SkipAudienceCheck, "aud")
		if j.UserClaim == "" {
			v.addf("auth.jwt.userClaim", "required")
		}
		if j.GroupsClaim == "" {
			v.addf("auth.jwt.groupsClaim", "required")
		}
		v.nonNegativeDuration("auth.jwt.leeway", j.Leeway)
	}
	if w := a.Webhook; w != nil {
		v.httpURL("auth.webhook.url", w.URL)
		v.positiveDuration("auth.webhook.timeout", w.Timeout)
		// A CA bundle for a plain http URL would do nothing: refuse it rather than let the
		// config claim a protection it does not give.
		if u, err := url.Parse(w.URL); w.CAFile != "" && err == nil && u.Scheme != "https" {
			v.addf("auth.webhook.caFile", "set, but auth.webhook.url %q is not https://", w.URL)
		}
	}
}

// requiredUnlessSkipped: a claim check is on unless explicitly skipped, and naming a value
// while skipping the check is a contradiction.
func requiredUnlessSkipped(v *validator, path, value, skipName string, skip bool, claim string) {
	switch {
	case value == "" && !skip:
		v.addf(path, "required: tokens must carry this %q (or set %s: true to accept any)", claim, skipName)
	case value != "" && skip:
		v.addf(path, "set together with %s: choose one", skipName)
	}
}

func (c *Config) validateRoutes(v *validator) {
	first := make(map[string]int, len(c.Routes))
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Service == "":
			v.addf(p+".service", "required")
		case !serviceRE.MatchString(r.Service):
			v.addf(p+".service", "%q must match %s", r.Service, serviceRE)
		default:
			if j, dup := first[r.Service]; dup {
				v.addf(p+".service", "duplicate %q (first at routes[%d])", r.Service, j)
			} else {
				first[r.Service] = i
			}
		}
		v.httpURL(p+".url", r.URL)
		if u, err := url.Parse(r.URL); err == nil && (u.RawQuery != "" || u.Fragment != "") {
			v.addf(p+".url", "%q must not have a query or fragment: the method is appended to the path", r.URL)
		}
		v.positiveDuration(p+".timeout", r.Timeout)
		v.positiveInt(p+".maxInFlight", r.MaxInFlight)
	}
}

func (c *Config) validateKafka(v *validator) {
	k := c.Kafka
	if len(k.Brokers) == 0 {
		return // downlink disabled; topics are ignored
	}
	for i, b := range k.Brokers {
		p := fmt.Sprintf("kafka.brokers[%d]", i)
		if h, port, ok := v.hostPort(p, b); ok && (h == "" || port == 0) {
			v.addf(p, "%q needs both a host and a non-zero port", b)
		}
	}
	topic := func(path, name string) {
		switch {
		case name == "":
			v.addf(path, "required when kafka.brokers is set")
		case len(name) > maxTopicLength || !topicRE.MatchString(name) || name == "." || name == "..":
			v.addf(path, "%q is not a valid Kafka topic name (letters, digits, '.', '_', '-', at most %d)",
				name, maxTopicLength)
		}
	}
	topic("kafka.downlinkTopic", k.DownlinkTopic)
	topic("kafka.receiptsTopic", k.ReceiptsTopic)
	if k.DownlinkTopic != "" && k.DownlinkTopic == k.ReceiptsTopic {
		v.addf("kafka.receiptsTopic", "must differ from kafka.downlinkTopic %q", k.DownlinkTopic)
	}
	if k.EventsTopic != "" {
		topic("kafka.eventsTopic", k.EventsTopic)
		if k.EventsTopic == k.DownlinkTopic || k.EventsTopic == k.ReceiptsTopic {
			v.addf("kafka.eventsTopic", "must differ from kafka.downlinkTopic and kafka.receiptsTopic")
		}
	}
	v.positiveInt("kafka.eventsQueue", k.EventsQueue)
	validateExpiry(v, k.Expiry)
	validateKafkaSecurity(v, k.TLS, k.SASL)
}

// validateKafkaSecurity checks the shape of kafka.tls and kafka.sasl; whether the files exist
// and hold what they should is checked when the gateway reads them at start
// (kafkasec.FromConfig), so that Validate stays pure.
func validateKafkaSecurity(v *validator, t *KafkaTLS, s *KafkaSASL) {
	if t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		v.addf("kafka.tls", "certFile and keyFile go together (a client certificate and its key), got only one")
	}
	if s != nil {
		v.oneOf("kafka.sasl.mechanism", s.Mechanism, kafkaSASLMechanisms)
		if s.Mechanism == "PLAIN" && t == nil {
			v.addf("kafka.sasl.mechanism", "PLAIN sends the password as it is: only with kafka.tls (or use SCRAM-SHA-512)")
		}
		if s.UsernameFile == "" {
			v.addf("kafka.sasl.usernameFile", "required")
		}
		if s.PasswordFile == "" {
			v.addf("kafka.sasl.passwordFile", "required")
		}
	}
}

// validateExpiry checks what the client can; whether the broker accepts the session timeout
// (group.min/max.session.timeout.ms) only the broker knows.
func validateExpiry(v *validator, e KafkaExpiry) {
	for _, f := range []struct {
		path string
		d    Duration
	}{
		{"kafka.expiry.sessionTimeout", e.SessionTimeout},
		{"kafka.expiry.heartbeatInterval", e.HeartbeatInterval},
		{"kafka.expiry.rebalanceTimeout", e.RebalanceTimeout},
	} {
		v.positiveDuration(f.path, f.d)
		if f.d.Duration > maxKafkaGroupDuration {
			v.addf(f.path, "%s must be at most %s: Kafka carries it as int32 milliseconds",
				f.d.Duration, maxKafkaGroupDuration)
		}
	}
	if e.HeartbeatInterval.Duration >= e.SessionTimeout.Duration {
		v.addf("kafka.expiry.heartbeatInterval", "%s must be shorter than kafka.expiry.sessionTimeout %s, "+
			"or the coordinator declares live members dead between two heartbeats and the group never settles",
			e.HeartbeatInterval.Duration, e.SessionTimeout.Duration)
	}
	v.positiveInt("kafka.expiry.maxEntries", e.MaxEntries)
}

func (c *Config) validateDrain(v *validator) {
	d := c.Drain
	v.nonNegativeDuration("drain.deregistrationDelay", d.DeregistrationDelay)
	v.nonNegativeDuration("drain.spreadWindow", d.SpreadWindow)
	v.nonNegativeDuration("drain.flushTimeout", d.FlushTimeout)
	paced := d.DeregistrationDelay.Duration + d.SpreadWindow.Duration + d.FlushTimeout.Duration
	if d.HardDeadline.Duration <= paced {
		v.addf("drain.hardDeadline", "%s must be longer than deregistrationDelay + spreadWindow + "+
			"flushTimeout = %s + %s + %s = %s; otherwise the deadline force-closes clients that "+
			"were still due a paced GOAWAY, which is the reconnect storm the drain exists to avoid",
			d.HardDeadline.Duration, d.DeregistrationDelay.Duration, d.SpreadWindow.Duration,
			d.FlushTimeout.Duration, paced)
	}
}

func (c *Config) validateReplay(v *validator) {
	v.positiveInt("replay.maxRecords", c.Replay.MaxRecords)
	v.positiveDuration("replay.maxAge", c.Replay.MaxAge)
}

func (c *Config) validateLogging(v *validator) {
	v.oneOf("logging.level", c.Logging.Level, logLevels)
	v.oneOf("logging.format", c.Logging.Format, logFormats)
}
