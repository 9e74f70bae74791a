package controllers

import (
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/gateway/config"
)

const (
	// ConfigDir is where the pod sees its configuration volume.
	ConfigDir = "/etc/tcpgateway"
	// ConfigFile is the key of the ConfigMap and the file name under ConfigDir.
	ConfigFile = "gateway.yaml"
	// KeysDir holds the JWT keys from the Secret, one file per Secret key.
	KeysDir = ConfigDir + "/keys"
)

// InvalidConfigError says that a TCPGateway passed admission but renders a configuration the
// gateway would refuse to start with. It is the user's to fix, so it becomes a Degraded
// condition and a Warning Event, never a crash-looping rollout.
type InvalidConfigError struct{ Err error }

func (e *InvalidConfigError) Error() string { return "invalid gateway configuration: " + e.Err.Error() }
func (e *InvalidConfigError) Unwrap() error { return e.Err }

// GatewayConfig maps a TCPGateway onto the gateway's configuration schema. Fields the spec
// leaves zero stay zero, which the gateway reads as its default; ServerID stays empty since
// each pod takes its own from POD_NAME. The error reports durations that do not parse, which
// the CRD schema already rules out for objects that went through the API server.
func GatewayConfig(gw *v1alpha1.TCPGateway) (*config.Config, error) {
	var errs []error
	dur := func(field string, d v1alpha1.Duration) config.Duration {
		if d == "" {
			return config.Duration{}
		}
		v, err := d.Parse()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
		return config.Duration{Duration: v}
	}
	s := &gw.Spec
	c := &config.Config{
		Listen: config.Listen{
			Clients: fmt.Sprintf(":%d", clientPort(gw)),
			Admin:   fmt.Sprintf(":%d", adminPort(gw)),
			Control: ControlSocket,
		},
		Limits: config.Limits{
			MaxConnections:         int(s.Limits.MaxConnections),
			MaxPendingHandshakes:   int(s.Limits.MaxPendingHandshakes),
			MaxFrameBytes:          int(s.Limits.MaxFrameBytes),
			MaxHandshakeFrameBytes: int(s.Limits.MaxHandshakeFrameBytes),
			PerAddress: config.AddressLimits{
				MaxConnections: int(s.Limits.PerAddress.MaxConnections),
				HandshakeBurst: int(s.Limits.PerAddress.HandshakeBurst),
			},
			HandshakeTimeout:    dur("spec.limits.handshakeTimeout", s.Limits.HandshakeTimeout),
			HeartbeatInterval:   dur("spec.limits.heartbeatInterval", s.Limits.HeartbeatInterval),
			IdleTimeout:         dur("spec.limits.idleTimeout", s.Limits.IdleTimeout),
			RequestBurst:        int(s.Limits.RequestBurst),
			OutboundQueueFrames: int(s.Limits.OutboundQueueFrames),
			OutboundQueueBytes:  int(s.Limits.OutboundQueueBytes),
			UplinkWorkers:       int(s.Limits.UplinkWorkers),
			PendingAnswers:      int(s.Limits.PendingAnswers),
			RefusedAnswers:      int(s.Limits.RefusedAnswers),
		},
		Drain: gatewayDrain(gw, dur),
	}
	if q := s.Limits.RequestsPerSecond; q != nil {
		c.Limits.RequestsPerSecond = q.AsApproximateFloat64()
	}
	if q := s.Limits.PerAddress.HandshakesPerSecond; q != nil {
		c.Limits.PerAddress.HandshakesPerSecond = q.AsApproximateFloat64()
	}
	if q := s.Limits.OutboundBudgetBytes; q != nil {
		c.Limits.OutboundBudgetBytes = int(q.Value())
	}
	if j := s.Auth.JWT; j != nil {
		c.Auth.JWT = &config.JWTAuth{
			Issuer:            j.Issuer,
			SkipIssuerCheck:   j.SkipIssuerCheck,
			Audience:          j.Audience,
			SkipAudienceCheck: j.SkipAudienceCheck,
			UserClaim:         j.UserClaim,
			GroupsClaim:       j.GroupsClaim,
			Leeway:            dur("spec.auth.jwt.leeway", j.Leeway),
		}
		// Relative to the config file's directory (ConfigDir in the pod): the rendered config
		// then holds no absolute paths, so it works wherever the volume is mounted.
		if j.HS256Key != "" {
			c.Auth.JWT.HS256SecretFile = path.Join("keys", string(j.HS256Key))
		}
		if j.RS256PublicKey != "" {
			c.Auth.JWT.RS256PublicKeyFile = path.Join("keys", string(j.RS256PublicKey))
		}
		if j.KeySet != "" {
			c.Auth.JWT.KeySetFile = path.Join("keys", string(j.KeySet))
		}
	}
	c.Auth.RefreshLead = dur("spec.auth.refreshLead", s.Auth.RefreshLead)
	c.Auth.RefreshGrace = dur("spec.auth.refreshGrace", s.Auth.RefreshGrace)
	if w := s.Auth.Webhook; w != nil {
		c.Auth.Webhook = &config.WebhookAuth{URL: w.URL, Timeout: dur("spec.auth.webhook.timeout", w.Timeout)}
		if w.CABundle != nil {
			c.Auth.Webhook.CAFile = webhookCAFile
		}
	}
	// The files of the Secrets (secretProjections), never their content.
	if rebalanceEnabled(gw) {
		c.Listen.RebalanceKeyFile = rebalanceKeyFile
	}
	if t := s.TLS; t != nil {
		c.Listen.TLS = &config.ListenTLS{CertFile: listenCertFile, KeyFile: listenKeyFile, MinVersion: string(t.MinVersion)}
	}
	if websocketEnabled(gw) {
		w := s.WebSocket
		c.Listen.WebSocket = &config.ListenWebSocket{
			Address:        fmt.Sprintf(":%d", websocketPort(gw)),
			Path:           w.Path,
			AllowedOrigins: slices.Clone(w.AllowedOrigins),
		}
		if c.Listen.TLS != nil { // wss:// with the client port's certificate
			t := *c.Listen.TLS
			c.Listen.WebSocket.TLS = &t
		}
	}
	for i, r := range s.Routes {
		c.Routes = append(c.Routes, config.Route{
			Service:     r.Service,
			URL:         r.URL,
			Timeout:     dur(fmt.Sprintf("spec.routes[%d].timeout", i), r.Timeout),
			MaxInFlight: int(r.MaxInFlight),
			H2C:         r.H2C,
		})
	}
	for _, b := range s.Kafka.BootstrapServers {
		c.Kafka.Brokers = append(c.Kafka.Brokers, string(b))
	}
	c.Kafka.DownlinkTopic, c.Kafka.ReceiptsTopic = topicNames(gw)
	c.Kafka.EventsTopic, c.Kafka.EventsOmitRemoteAddress = eventsTopicName(gw), s.Kafka.EventsOmitRemoteAddress
	if t := s.Kafka.TLS; t != nil {
		c.Kafka.TLS = &config.KafkaTLS{ServerName: t.ServerName}
		if t.CA != nil {
			c.Kafka.TLS.CAFile = kafkaCAFile
		}
		if t.ClientCertificate != nil {
			c.Kafka.TLS.CertFile, c.Kafka.TLS.KeyFile = kafkaCertFile, kafkaKeyFile
		}
	}
	if sasl := s.Kafka.SASL; sasl != nil {
		c.Kafka.SASL = &config.KafkaSASL{Mechanism: string(sasl.Mechanism), UsernameFile: kafkaUserFile, PasswordFile: kafkaPassFile}
	}
	e := s.Kafka.Expiry
	c.Kafka.Expiry = config.KafkaExpiry{
		SessionTimeout:    dur("spec.kafka.expiry.sessionTimeout", e.SessionTimeout),
		HeartbeatInterval: dur("spec.kafka.expiry.heartbeatInterval", e.HeartbeatInterval),
		RebalanceTimeout:  dur("spec.kafka.expiry.rebalanceTimeout", e.RebalanceTimeout),
		MaxEntries:        int(e.MaxEntries),
	}
	return c, errors.Join(errs...)
}

// gatewayDrain maps spec.drain; the StatefulSet derives its grace period from the same values.
func gatewayDrain(gw *v1alpha1.TCPGateway, dur func(string, v1alpha1.Duration) config.Duration) config.Drain {
	d := gw.Spec.Drain
	return config.Drain{
		DeregistrationDelay: dur("spec.drain.deregistrationDelay", d.DeregistrationDelay),
		SpreadWindow:        dur("spec.drain.spreadWindow", d.SpreadWindow),
		FlushTimeout:        dur("spec.drain.flushTimeout", d.FlushTimeout),
		HardDeadline:        dur("spec.drain.hardDeadline", d.HardDeadline),
	}
}

// clientPort is spec.port, or the gateway's default for objects built in Go.
func clientPort(gw *v1alpha1.TCPGateway) int32 {
	return portOr(gw.Spec.Port, config.DefaultClientsAddress)
}

// websocketEnabled reports whether spec.websocket asks for the WebSocket listener.
func websocketEnabled(gw *v1alpha1.TCPGateway) bool {
	return gw.Spec.WebSocket != nil && gw.Spec.WebSocket.Enabled
}

// websocketPort is spec.websocket.port, or the gateway's default for objects built in Go.
func websocketPort(gw *v1alpha1.TCPGateway) int32 {
	var p int32
	if gw.Spec.WebSocket != nil {
		p = gw.Spec.WebSocket.Port
	}
	return portOr(p, config.DefaultWebSocketAddress)
}

// adminPort is spec.adminPort, or the gateway's default for objects built in Go.
func adminPort(gw *v1alpha1.TCPGateway) int32 {
	return portOr(gw.Spec.AdminPort, config.DefaultAdminAddress)
}

func portOr(p int32, defaultAddr string) int32 {
	if p != 0 {
		return p
	}
	_, port, _ := net.SplitHostPort(defaultAddr)
	n, _ := strconv.Atoi(port) // a constant of gateway/config; a test checks it parses
	return int32(n)
}

// RenderedConfig is the gateway configuration of a TCPGateway, defaulted and validated.
type RenderedConfig struct {
	// Config is what the pods load (their ServerID comes from POD_NAME).
	Config *config.Config
	// YAML is the content of gateway.yaml.
	YAML []byte
	// Hash of YAML; it goes on the pod template so a change rolls the pods.
	Hash string
}

// RenderConfig maps, defaults and validates the gateway configuration exactly as the gateway
// will at start-up (config.Load: Default, then Validate). It returns an *InvalidConfigError
// when the gateway would refuse it.
func RenderConfig(gw *v1alpha1.TCPGateway) (*RenderedConfig, error) {
	c, err := GatewayConfig(gw)
	if err != nil {
		return nil, &InvalidConfigError{Err: err}
	}
	// Validate requires a ServerID and Default would fill it with the operator's host name;
	// the pods get theirs from POD_NAME, so a placeholder stands in and is removed again.
	c.ServerID = "placeholder"
	c.Default()
	err = c.Validate()
	c.ServerID = ""
	if err != nil {
		return nil, &InvalidConfigError{Err: err}
	}
	// Defaulted before rendering, so the ConfigMap shows every value the pods run with.
	body, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("while rendering gateway.yaml: %w", err)
	}
	data := append([]byte(fmt.Sprintf("# Rendered by the tcpgateway operator from TCPGateway %s/%s: edit that, not this.\n"+
		"# serverID comes from each pod's POD_NAME.\n", gw.Namespace, gw.Name)), body...)
	return &RenderedConfig{Config: c, YAML: data, Hash: hashOf(string(data))}, nil
}

// ConfigMap builds the ConfigMap holding gateway.yaml, and returns the hash of its content.
func ConfigMap(gw *v1alpha1.TCPGateway) (*corev1.ConfigMap, string, error) {
	rc, err := RenderConfig(gw)
	if err != nil {
		return nil, "", err
	}
	return configMapFrom(gw, rc), rc.Hash, nil
}

func configMapFrom(gw *v1alpha1.TCPGateway, rc *RenderedConfig) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      configMapName(gw),
			Namespace: gw.Namespace,
			Labels:    objectLabels(gw),
		},
		Data: map[string]string{ConfigFile: string(rc.YAML)},
	}
	cm.Annotations = map[string]string{AnnotationSpecHash: specHash(cm.Labels, nil, cm.Data)}
	return cm
}
