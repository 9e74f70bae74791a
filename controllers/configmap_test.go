package controllers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/test/repo"
)

func d(s string) config.Duration {
	v, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return config.Duration{Duration: v}
}

func TestGatewayConfig(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.TCPGateway)
		want   func(*config.Config) // edits the expected config of the default gateway
	}{
		{
			name:   "defaults",
			mutate: func(*v1alpha1.TCPGateway) {},
			want:   func(*config.Config) {},
		},
		{
			name: "ports",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Port, gw.Spec.AdminPort = 443, 8443
			},
			want: func(c *config.Config) {
				c.Listen = config.Listen{Clients: ":443", Admin: ":8443", Control: "/var/run/tcpgateway/control.sock"}
			},
		},
		{
			name:   "fractional request rate",
			mutate: func(gw *v1alpha1.TCPGateway) { gw.Spec.Limits.RequestsPerSecond = ptr.To(resource.MustParse("500m")) },
			want:   func(c *config.Config) { c.Limits.RequestsPerSecond = 0.5 },
		},
		{
			name: "jwt with every key source, issuer and audience",
			mutate: func(gw *v1alpha1.TCPGateway) {
				j := gw.Spec.Auth.JWT
				j.RS256PublicKey, j.KeySet, j.Issuer, j.Audience, j.UserClaim = "rs256.pub.pem", "jwks.json", "https://id.example.com", "chat-eu", "uid"
			},
			want: func(c *config.Config) {
				c.Auth.JWT.RS256PublicKeyFile, c.Auth.JWT.KeySetFile = "keys/rs256.pub.pem", "keys/jwks.json"
				c.Auth.JWT.Issuer, c.Auth.JWT.Audience, c.Auth.JWT.UserClaim = "https://id.example.com", "chat-eu", "uid"
			},
		},
		{
			name: "jwt with the claim checks skipped by name",
			mutate: func(gw *v1alpha1.TCPGateway) {
				j := gw.Spec.Auth.JWT
				j.Issuer, j.Audience, j.SkipIssuerCheck, j.SkipAudienceCheck = "", "", true, true
			},
			want: func(c *config.Config) {
				c.Auth.JWT.Issuer, c.Auth.JWT.Audience = "", ""
				c.Auth.JWT.SkipIssuerCheck, c.Auth.JWT.SkipAudienceCheck = true, true
			},
		},
		{
			name: "webhook",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Auth = v1alpha1.Auth{Webhook: &v1alpha1.WebhookAuth{URL: "http://auth.prod.svc/verify", Timeout: "1500ms"}}
			},
			want: func(c *config.Config) {
				c.Auth = config.Auth{Webhook: &config.WebhookAuth{URL: "http://auth.prod.svc/verify", Timeout: d("1.5s")}}
			},
		},
		{
			name: "routes keep their order",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Routes = append(gw.Spec.Routes, v1alpha1.Route{Service: "presence", URL: "http://presence:8080", Timeout: "1s", MaxInFlight: 10, H2C: true})
			},
			want: func(c *config.Config) {
				c.Routes = append(c.Routes, config.Route{Service: "presence", URL: "http://presence:8080", Timeout: d("1s"), MaxInFlight: 10, H2C: true})
			},
		},
		{
			name: "explicit topics and several brokers",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Kafka.BootstrapServers = []v1alpha1.HostPort{"k0:9092", "[fd00::1]:9092"}
				gw.Spec.Kafka.DownlinkTopic, gw.Spec.Kafka.ReceiptsTopic, gw.Spec.Kafka.EventsTopic = "down", "rcpt", "ev"
				gw.Spec.Kafka.EventsOmitRemoteAddress = true
			},
			want: func(c *config.Config) {
				c.Kafka.Brokers = []string{"k0:9092", "[fd00::1]:9092"}
				c.Kafka.DownlinkTopic, c.Kafka.ReceiptsTopic, c.Kafka.EventsTopic = "down", "rcpt", "ev"
				c.Kafka.EventsOmitRemoteAddress = true
			},
		},
		{
			name: "expiry group",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Kafka.Expiry = v1alpha1.KafkaExpiry{SessionTimeout: "45s", HeartbeatInterval: "3s", RebalanceTimeout: "1m", MaxEntries: 5000}
			},
			want: func(c *config.Config) {
				c.Kafka.Expiry = config.KafkaExpiry{SessionTimeout: d("45s"), HeartbeatInterval: d("3s"), RebalanceTimeout: d("1m"), MaxEntries: 5000}
			},
		},
		{
			name: "drain",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Drain = v1alpha1.Drain{DeregistrationDelay: "1s", SpreadWindow: "1m", FlushTimeout: "2s", HardDeadline: "90s"}
			},
			want: func(c *config.Config) {
				c.Drain = config.Drain{DeregistrationDelay: d("1s"), SpreadWindow: d("1m"), FlushTimeout: d("2s"), HardDeadline: d("90s")}
			},
		},
		{
			name: "limits of this issue",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Limits.MaxPendingHandshakes = 500
				gw.Spec.Limits.MaxHandshakeFrameBytes = 4096
				gw.Spec.Limits.PerAddress = v1alpha1.AddressLimits{MaxConnections: 20, HandshakesPerSecond: ptr.To(resource.MustParse("500m")), HandshakeBurst: 7}
				gw.Spec.Limits.OutboundBudgetBytes = ptr.To(resource.MustParse("256Mi"))
			},
			want: func(c *config.Config) {
				c.Limits.MaxPendingHandshakes, c.Limits.MaxHandshakeFrameBytes = 500, 4096
				c.Limits.PerAddress = config.AddressLimits{MaxConnections: 20, HandshakesPerSecond: 0.5, HandshakeBurst: 7}
				c.Limits.OutboundBudgetBytes = 256 << 20
			},
		},
		{
			name: "no schema defaults (built in Go): zero values, which the gateway defaults",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec = v1alpha1.TCPGatewaySpec{
					Image: "x",
					Auth:  v1alpha1.Auth{Webhook: &v1alpha1.WebhookAuth{URL: "http://a/b"}},
					Kafka: v1alpha1.Kafka{BootstrapServers: []v1alpha1.HostPort{"k:9092"}},
				}
			},
			want: func(c *config.Config) {
				*c = config.Config{
					Listen: config.Listen{Clients: ":7000", Admin: ":9090", Control: "/var/run/tcpgateway/control.sock"},
					Auth:   config.Auth{Webhook: &config.WebhookAuth{URL: "http://a/b"}},
					Kafka: config.Kafka{Brokers: []string{"k:9092"}, DownlinkTopic: "prod.chat.downlink", ReceiptsTopic: "prod.chat.receipts",
						EventsTopic: "prod.chat.session-events"},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := &config.Config{
				Listen: config.Listen{Clients: ":7000", Admin: ":9090", Control: "/var/run/tcpgateway/control.sock"},
				Limits: config.Limits{
					MaxConnections: 100000, MaxPendingHandshakes: 10000,
					MaxFrameBytes: 65536, MaxHandshakeFrameBytes: 8192,
					PerAddress:       config.AddressLimits{MaxConnections: 1000, HandshakesPerSecond: 50, HandshakeBurst: 1000},
					HandshakeTimeout: d("5s"), HeartbeatInterval: d("30s"), IdleTimeout: d("90s"),
					RequestsPerSecond: 50, RequestBurst: 100,
					OutboundQueueFrames: 1024, OutboundQueueBytes: 1 << 20, UplinkWorkers: 256,
				},
				Auth: config.Auth{JWT: &config.JWTAuth{
					HS256SecretFile: "keys/hs256.secret",
					Issuer:          "https://auth.example.com", Audience: "chat",
					UserClaim: "sub", GroupsClaim: "groups", Leeway: d("30s"),
				}},
				Routes: []config.Route{{Service: "echo", URL: "http://echo.prod.svc:8080/rpc", Timeout: d("5s"), MaxInFlight: 1024}},
				Kafka: config.Kafka{
					Brokers:       []string{"kafka.kafka.svc:9092"},
					DownlinkTopic: "prod.chat.downlink", ReceiptsTopic: "prod.chat.receipts",
					EventsTopic: "prod.chat.session-events",
					Expiry:      config.KafkaExpiry{SessionTimeout: d("6s"), HeartbeatInterval: d("500ms"), RebalanceTimeout: d("10s")},
				},
				Drain: config.Drain{DeregistrationDelay: d("5s"), SpreadWindow: d("20s"), FlushTimeout: d("5s"), HardDeadline: d("45s")},
			}
			tt.want(want)
			got, err := GatewayConfig(newGateway(tt.mutate))
			if err != nil {
				t.Fatalf("GatewayConfig: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				gy, _ := yaml.Marshal(got)
				wy, _ := yaml.Marshal(want)
				t.Errorf("GatewayConfig:\n%s\nwant:\n%s", gy, wy)
			}
		})
	}
}

// A spec the CRD schema admits but the gateway would refuse is an *InvalidConfigError that
// says what is wrong, never a configuration.
func TestRenderConfigInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.TCPGateway)
		want   string
	}{
		{
			// The schema cannot see the namespace-derived default of receiptsTopic.
			name:   "downlink topic equal to the default receipts topic",
			mutate: func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.DownlinkTopic = "prod.chat.receipts" },
			want:   `kafka.receiptsTopic: must differ from kafka.downlinkTopic "prod.chat.receipts"`,
		},
		{
			name:   "events topic equal to the default downlink topic",
			mutate: func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.EventsTopic = "prod.chat.downlink" },
			want:   `kafka.eventsTopic: must differ from kafka.downlinkTopic and kafka.receiptsTopic`,
		},
		{
			name:   "topic name Kafka refuses",
			mutate: func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.DownlinkTopic = ".." },
			want:   `kafka.downlinkTopic: ".." is not a valid Kafka topic name`,
		},
		{
			name:   "duration that does not parse (only possible in Go)",
			mutate: func(gw *v1alpha1.TCPGateway) { gw.Spec.Drain.SpreadWindow = "soon" },
			want:   `spec.drain.spreadWindow: invalid duration "soon"`,
		},
		{
			// The schema admits up to 87600h; Kafka takes int32 milliseconds.
			name:   "expiry session timeout Kafka cannot carry",
			mutate: func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.Expiry.SessionTimeout = "1000h" },
			want:   "kafka.expiry.sessionTimeout: 1000h0m0s must be at most 596h31m23.646s",
		},
		{
			name:   "expiry duration that does not parse (only possible in Go)",
			mutate: func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.Expiry.HeartbeatInterval = "often" },
			want:   `spec.kafka.expiry.heartbeatInterval: invalid duration "often"`,
		},
		{
			name: "several problems are all reported",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Limits.IdleTimeout = "10s"
				gw.Spec.Drain.HardDeadline = "10s"
			},
			want: "limits.idleTimeout: 10s must be longer than limits.heartbeatInterval 30s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway(tt.mutate)
			rc, err := RenderConfig(gw)
			var invalid *InvalidConfigError
			if !errors.As(err, &invalid) {
				t.Fatalf("RenderConfig = %v, %v; want an *InvalidConfigError", rc, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if _, _, err := ConfigMap(gw); !errors.As(err, &invalid) {
				t.Errorf("ConfigMap error = %v, want an *InvalidConfigError", err)
			}
		})
	}
}

// The rendered gateway.yaml is loaded by the gateway's own loader (strict: an unknown field
// fails) into the same configuration, and the pod's POD_NAME becomes its serverID.
func TestRenderedConfigLoadsInGateway(t *testing.T) {
	t.Setenv("POD_NAME", "chat-1")
	for _, gw := range []*v1alpha1.TCPGateway{
		newGateway(),
		newGateway(func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Auth = v1alpha1.Auth{Webhook: &v1alpha1.WebhookAuth{URL: "https://auth/verify", Timeout: "2s"}}
			gw.Spec.Routes = nil
		}),
		newGateway(func(gw *v1alpha1.TCPGateway) {
			gw.Spec.TLS = &v1alpha1.ListenerTLS{SecretName: "chat-tls", MinVersion: "1.2"}
			gw.Spec.Kafka.TLS = &v1alpha1.KafkaTLS{
				CA:                &v1alpha1.SecretKeyReference{Name: "kafka-ca", Key: "ca.crt"},
				ClientCertificate: &v1alpha1.ClientCertificate{SecretName: "kafka-user", CertificateKey: "tls.crt", PrivateKeyKey: "tls.key"},
				ServerName:        "kafka.example.com",
			}
			gw.Spec.Kafka.SASL = &v1alpha1.KafkaSASL{Mechanism: v1alpha1.SASLScramSHA256,
				SecretRef: v1alpha1.LocalSecretReference{Name: "kafka-user"}, UsernameKey: "username", PasswordKey: "password"}
		}),
		newGateway(func(gw *v1alpha1.TCPGateway) {
			gw.Spec.Auth = v1alpha1.Auth{Webhook: &v1alpha1.WebhookAuth{URL: "https://auth/verify", Timeout: "2s",
				CABundle: &v1alpha1.CABundle{SecretRef: &v1alpha1.SecretKeyReference{Name: "auth-ca", Key: "ca.crt"}}}}
		}),
	} {
		rc := mustRender(t, gw)
		if rc.Config.ServerID != "" {
			t.Errorf("rendered serverID = %q, want empty (each pod sets its own)", rc.Config.ServerID)
		}
		if strings.Contains(string(rc.YAML), "placeholder") {
			t.Errorf("gateway.yaml contains the validation placeholder:\n%s", rc.YAML)
		}
		loaded, err := config.Parse(rc.YAML)
		if err != nil {
			t.Fatalf("the gateway refuses the rendered config: %v\n%s", err, rc.YAML)
		}
		if loaded.ServerID != "chat-1" {
			t.Errorf("loaded serverID = %q, want chat-1 from POD_NAME", loaded.ServerID)
		}
		loaded.ServerID = ""
		if !reflect.DeepEqual(loaded, rc.Config) {
			t.Errorf("loaded config differs from the rendered one:\n%+v\n%+v", loaded, rc.Config)
		}
	}
}

func TestConfigMap(t *testing.T) {
	gw := newGateway()
	cm, hash, err := ConfigMap(gw)
	if err != nil {
		t.Fatal(err)
	}
	if cm.Name != "chat-config" || cm.Namespace != "prod" {
		t.Errorf("name = %s/%s, want prod/chat-config", cm.Namespace, cm.Name)
	}
	if cm.Labels[LabelInstance] != "chat" || cm.Labels[LabelManagedBy] != ManagedBy {
		t.Errorf("labels = %v", cm.Labels)
	}
	if cm.Annotations[AnnotationSpecHash] == "" {
		t.Error("no spec-hash annotation")
	}
	if !strings.Contains(cm.Data[ConfigFile], "hs256SecretFile: keys/hs256.secret") {
		t.Errorf("gateway.yaml:\n%s", cm.Data[ConfigFile])
	}

	// The hash is a function of the content: stable, and different when the content is.
	_, again, _ := ConfigMap(newGateway())
	if again != hash {
		t.Errorf("hash not stable: %s then %s", hash, again)
	}
	changed := []func(*v1alpha1.TCPGateway){
		func(gw *v1alpha1.TCPGateway) { gw.Spec.Routes[0].URL = "http://echo2:8080" },
		func(gw *v1alpha1.TCPGateway) { gw.Spec.Drain.SpreadWindow = "30s" },
		func(gw *v1alpha1.TCPGateway) { gw.Spec.Limits.MaxConnections = 10 },
		func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.Expiry.SessionTimeout = "45s" },
		func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.Expiry.MaxEntries = 10 },
	}
	for i, m := range changed {
		_, h, err := ConfigMap(newGateway(m))
		if err != nil {
			t.Fatal(err)
		}
		if h == hash {
			t.Errorf("change %d left the config hash unchanged", i)
		}
	}
	// Changes that do not reach the gateway configuration do not roll the pods.
	for i, m := range []func(*v1alpha1.TCPGateway){
		func(gw *v1alpha1.TCPGateway) { gw.Spec.Replicas = ptr.To[int32](5) },
		func(gw *v1alpha1.TCPGateway) { gw.Spec.Image = "other:v2" },
		func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.Partitions = 24 },
	} {
		if _, h, _ := ConfigMap(newGateway(m)); h != hash {
			t.Errorf("unrelated change %d changed the config hash", i)
		}
	}
}

// The CRD's schema defaults are the gateway's defaults, so a field left out of a TCPGateway
// means the same as a field left out of gateway.yaml.
func TestCRDDefaultsMatchGatewayDefaults(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "crd", "bases", "tcpgateway.io_tcpgateways.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd map[string]any
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	spec := dig(t, crd, "spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "spec", "properties")
	field := func(path ...any) map[string]any {
		return dig(t, spec, path...).(map[string]any)
	}
	def := func(path ...any) string { return fmt.Sprint(field(path...)["default"]) }
	dur := func(path ...any) time.Duration {
		v, err := time.ParseDuration(def(path...))
		if err != nil {
			t.Fatalf("%v: %v", path, err)
		}
		return v
	}
	num := func(path ...any) float64 {
		q, err := resource.ParseQuantity(def(path...))
		if err != nil {
			t.Fatalf("%v: %v", path, err)
		}
		return q.AsApproximateFloat64()
	}
	limits := func(f ...any) []any { return append([]any{"limits", "properties"}, f...) }
	expiry := func(f string) []any { return []any{"kafka", "properties", "expiry", "properties", f} }
	checks := []struct {
		name      string
		crd, want any
	}{
		{"port", ":" + def("port"), config.DefaultClientsAddress},
		{"adminPort", ":" + def("adminPort"), config.DefaultAdminAddress},
		{"limits.maxConnections", num(limits("maxConnections")...), float64(config.DefaultMaxConnections)},
		{"limits.maxPendingHandshakes", num(limits("maxPendingHandshakes")...), float64(config.DefaultMaxPendingHandshakes)},
		{"limits.maxHandshakeFrameBytes", num(limits("maxHandshakeFrameBytes")...), float64(config.DefaultMaxHandshakeFrameBytes)},
		{"limits.perAddress.maxConnections", num(limits("perAddress", "properties", "maxConnections")...), float64(config.DefaultAddressMaxConnections)},
		{"limits.perAddress.handshakesPerSecond", num(limits("perAddress", "properties", "handshakesPerSecond")...), config.DefaultAddressHandshakeRate},
		{"limits.perAddress.handshakeBurst", num(limits("perAddress", "properties", "handshakeBurst")...), float64(config.DefaultAddressHandshakeBurst)},
		// No schema default: derived from maxConnections and outboundQueueBytes by the gateway.
		{"limits.outboundBudgetBytes", field(limits("outboundBudgetBytes")...)["default"], nil},
		{"limits.maxFrameBytes", num(limits("maxFrameBytes")...), float64(config.DefaultMaxFrameBytes)},
		{"limits.maxFrameBytes minimum", field(limits("maxFrameBytes")...)["minimum"], float64(config.MinMaxFrameBytes)},
		{"limits.maxFrameBytes maximum", field(limits("maxFrameBytes")...)["maximum"], float64(config.MaxMaxFrameBytes)},
		{"limits.handshakeTimeout", dur(limits("handshakeTimeout")...), config.DefaultHandshakeTimeout},
		{"limits.heartbeatInterval", dur(limits("heartbeatInterval")...), config.DefaultHeartbeatInterval},
		{"limits.idleTimeout", dur(limits("idleTimeout")...), config.DefaultIdleTimeout},
		{"limits.requestsPerSecond", num(limits("requestsPerSecond")...), config.DefaultRequestsPerSecond},
		{"limits.requestBurst", num(limits("requestBurst")...), float64(config.DefaultRequestBurst)},
		{"limits.outboundQueueFrames", num(limits("outboundQueueFrames")...), float64(config.DefaultOutboundQueueFrames)},
		{"limits.outboundQueueBytes", num(limits("outboundQueueBytes")...), float64(config.DefaultOutboundQueueBytes)},
		{"limits.uplinkWorkers", num(limits("uplinkWorkers")...), float64(config.DefaultUplinkWorkers)},
		{"auth.jwt.userClaim", def("auth", "properties", "jwt", "properties", "userClaim"), config.DefaultUserClaim},
		{"auth.jwt.groupsClaim", def("auth", "properties", "jwt", "properties", "groupsClaim"), config.DefaultGroupsClaim},
		{"auth.jwt.leeway", dur("auth", "properties", "jwt", "properties", "leeway"), config.DefaultJWTLeeway},
		{"auth.webhook.timeout", dur("auth", "properties", "webhook", "properties", "timeout"), config.DefaultWebhookTimeout},
		{"auth.refreshLead", dur("auth", "properties", "refreshLead"), config.DefaultRefreshLead},
		{"auth.refreshGrace", dur("auth", "properties", "refreshGrace"), config.DefaultRefreshGrace},
		{"routes.timeout", dur("routes", "items", "properties", "timeout"), config.DefaultRouteTimeout},
		{"routes.maxInFlight", num("routes", "items", "properties", "maxInFlight"), float64(config.DefaultRouteMaxInFlight)},
		{"kafka.expiry.sessionTimeout", dur(expiry("sessionTimeout")...), config.DefaultExpirySessionTimeout},
		{"kafka.expiry.heartbeatInterval", dur(expiry("heartbeatInterval")...), config.DefaultExpiryHeartbeatInterval},
		{"kafka.expiry.rebalanceTimeout", dur(expiry("rebalanceTimeout")...), config.DefaultExpiryRebalanceTimeout},
		// No schema default: the gateway's is replay.maxRecords, which the CRD does not set.
		{"kafka.expiry.maxEntries", field(expiry("maxEntries")...)["default"], nil},
		{"drain.deregistrationDelay", dur("drain", "properties", "deregistrationDelay"), config.DefaultDeregistrationDelay},
		{"drain.spreadWindow", dur("drain", "properties", "spreadWindow"), config.DefaultSpreadWindow},
		{"drain.flushTimeout", dur("drain", "properties", "flushTimeout"), config.DefaultFlushTimeout},
		{"drain.hardDeadline", dur("drain", "properties", "hardDeadline"), config.DefaultHardDeadline},
		{"replicas", num("replicas"), float64(v1alpha1.DefaultReplicas)},
		{"kafka.partitions", num("kafka", "properties", "partitions"), float64(v1alpha1.DefaultPartitions)},
		{"kafka.replicationFactor", num("kafka", "properties", "replicationFactor"), float64(v1alpha1.DefaultReplicationFactor)},
		{"kafka.retention", def("kafka", "properties", "retention"), v1alpha1.DefaultRetention},
		{"kafka.sasl.mechanism", def("kafka", "properties", "sasl", "properties", "mechanism"), config.DefaultKafkaSASLMechanism},
		{"tls.minVersion", def("tls", "properties", "minVersion"), config.TLS12},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.crd, c.want) {
			t.Errorf("%s: CRD has %v (%T), gateway/config has %v (%T)", c.name, c.crd, c.crd, c.want, c.want)
		}
	}
}

// dig walks a decoded YAML document by map keys and list indexes.
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok || m[k] == nil {
				t.Fatalf("CRD: no %q in %v", k, path)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || len(l) <= k {
				t.Fatalf("CRD: no [%d] in %v", k, path)
			}
			v = l[k]
		}
	}
	return v
}
