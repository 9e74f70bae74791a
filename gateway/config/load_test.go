package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// mapEnv is an injectable environment.
func mapEnv(m map[string]string) lookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func noEnv(string) (string, bool) { return "", false }

const minimalYAML = `
serverID: from-file
auth:
  jwt:
    hs256SecretFile: /keys/hs
    issuer: https://auth.example.com
    audience: chat
routes:
  - service: chat
    url: http://chat:8080
    timeout: 1500ms
`

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadAppliesFileThenDefaults(t *testing.T) {
	c, err := load(writeFile(t, minimalYAML), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.ServerID != "from-file" {
		t.Errorf("ServerID = %q", c.ServerID)
	}
	if got := c.Routes[0].Timeout.Duration; got != 1500*time.Millisecond {
		t.Errorf("routes[0].timeout = %s, want 1.5s from the file", got)
	}
	if c.Routes[0].MaxInFlight != DefaultRouteMaxInFlight || c.Limits.MaxFrameBytes != DefaultMaxFrameBytes ||
		c.Auth.JWT.UserClaim != DefaultUserClaim {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestLoadEnvOverrides(t *testing.T) {
	noServerID := strings.Replace(minimalYAML, "serverID: from-file", "", 1)
	tests := []struct {
		name        string
		yaml        string
		env         map[string]string
		wantID      string
		wantClients string
		wantAdmin   string
		wantBrokers []string
	}{
		{
			name: "none", yaml: minimalYAML, env: nil,
			wantID: "from-file", wantClients: DefaultClientsAddress, wantAdmin: DefaultAdminAddress,
		},
		{
			name: "pod name does not replace the file's server id", yaml: minimalYAML,
			env:    map[string]string{"POD_NAME": "tcpgw-2"},
			wantID: "from-file", wantClients: DefaultClientsAddress, wantAdmin: DefaultAdminAddress,
		},
		{
			name: "pod name fills an empty server id", yaml: noServerID,
			env:    map[string]string{"POD_NAME": "tcpgw-2"},
			wantID: "tcpgw-2", wantClients: DefaultClientsAddress, wantAdmin: DefaultAdminAddress,
		},
		{
			name: "server id override wins over file and pod name", yaml: minimalYAML,
			env:    map[string]string{"POD_NAME": "tcpgw-2", "TCPGW_SERVER_ID": "explicit"},
			wantID: "explicit", wantClients: DefaultClientsAddress, wantAdmin: DefaultAdminAddress,
		},
		{
			name: "listen and brokers", yaml: minimalYAML + "kafka:\n  downlinkTopic: d\n  receiptsTopic: r\n",
			env: map[string]string{
				"TCPGW_LISTEN_CLIENTS": "127.0.0.1:0",
				"TCPGW_LISTEN_ADMIN":   "127.0.0.1:0",
				"TCPGW_KAFKA_BROKERS":  " k0:9092, ,k1:9092 ",
			},
			wantID: "from-file", wantClients: "127.0.0.1:0", wantAdmin: "127.0.0.1:0",
			wantBrokers: []string{"k0:9092", "k1:9092"},
		},
		{
			name: "bind host fills only addresses without a host", yaml: minimalYAML,
			env:    map[string]string{"TCPGW_BIND_HOST": "127.0.10.7", "TCPGW_LISTEN_ADMIN": "127.0.0.1:9999"},
			wantID: "from-file", wantClients: "127.0.10.7:7000", wantAdmin: "127.0.0.1:9999",
		},
		{
			name: "empty values count as unset", yaml: minimalYAML,
			env:    map[string]string{"TCPGW_SERVER_ID": "", "TCPGW_LISTEN_CLIENTS": " "},
			wantID: "from-file", wantClients: DefaultClientsAddress, wantAdmin: DefaultAdminAddress,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(writeFile(t, tt.yaml), mapEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.ServerID != tt.wantID || c.Listen.Clients != tt.wantClients || c.Listen.Admin != tt.wantAdmin ||
				!slices.Equal(c.Kafka.Brokers, tt.wantBrokers) {
				t.Errorf("got serverID=%q clients=%q admin=%q brokers=%q", c.ServerID, c.Listen.Clients,
					c.Listen.Admin, c.Kafka.Brokers)
			}
		})
	}
}

// The WebSocket listener's address is bound to TCPGW_BIND_HOST like the others: pods of the
// local cluster share one network namespace, and each binding ":7080" would fail all but one.
func TestLoadBindHostWebSocket(t *testing.T) {
	env := mapEnv(map[string]string{"TCPGW_BIND_HOST": "127.0.10.7"})
	for _, c := range []struct{ yaml, want string }{
		{"listen:\n  websocket: {}\n", "127.0.10.7:7080"},
		{"listen:\n  websocket:\n    address: \":7443\"\n", "127.0.10.7:7443"},
		{"listen:\n  websocket:\n    address: 127.0.0.1:7080\n", "127.0.0.1:7080"},
	} {
		cfg, err := load(writeFile(t, minimalYAML+c.yaml), env)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Listen.WebSocket.Address; got != c.want {
			t.Errorf("%q: listen.websocket.address %q, want %q", c.yaml, got, c.want)
		}
	}
	cfg, err := load(writeFile(t, minimalYAML), env)
	if err != nil || cfg.Listen.WebSocket != nil {
		t.Fatalf("without listen.websocket: %v, %+v", err, cfg.Listen.WebSocket)
	}
}

// The operator passes the control socket's path in the environment, where a node agent
// that maps volume paths rewrites it, and TCPGW_BIND_HOST leaves it alone (it is no address).
func TestLoadControlSocketOverride(t *testing.T) {
	c, err := load(writeFile(t, minimalYAML), mapEnv(map[string]string{"TCPGW_BIND_HOST": "127.0.10.7"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.Control != DefaultControlSocket || c.Listen.Pprof != "" {
		t.Errorf("control %q pprof %q, want %q and off", c.Listen.Control, c.Listen.Pprof, DefaultControlSocket)
	}
	c, err = load(writeFile(t, minimalYAML+"listen:\n  control: /from/file.sock\n"),
		mapEnv(map[string]string{"TCPGW_LISTEN_CONTROL": "/pod/run/control.sock", "TCPGW_BIND_HOST": "127.0.10.7"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.Control != "/pod/run/control.sock" {
		t.Errorf("control %q, want the environment's", c.Listen.Control)
	}
}

func TestLoadKafkaExpiry(t *testing.T) {
	const kafka = "kafka:\n  brokers: [\"k:9092\"]\n  downlinkTopic: d\n  receiptsTopic: r\n"
	c, err := load(writeFile(t, minimalYAML+kafka+
		"  expiry:\n    sessionTimeout: 45s\n    heartbeatInterval: 3s\n    maxEntries: 2000\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := KafkaExpiry{SessionTimeout: Duration{45 * time.Second}, HeartbeatInterval: Duration{3 * time.Second},
		RebalanceTimeout: Duration{DefaultExpiryRebalanceTimeout}, MaxEntries: 2000}
	if c.Kafka.Expiry != want {
		t.Errorf("kafka.expiry = %+v, want %+v", c.Kafka.Expiry, want)
	}

	_, err = load(writeFile(t, minimalYAML+kafka+"  expiry:\n    sessionTimeout: 45s\n    heartbeatInterval: 1m\n"), noEnv)
	if want := "kafka.expiry.heartbeatInterval: 1m0s must be shorter than kafka.expiry.sessionTimeout 45s"; err == nil ||
		!strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want containing %q", err, want)
	}
}

// TestLoadReadsProcessEnv covers the exported wiring to os.LookupEnv.
func TestLoadReadsProcessEnv(t *testing.T) {
	t.Setenv("TCPGW_SERVER_ID", "from-env")
	t.Setenv("TCPGW_KAFKA_BROKERS", "")
	c, err := Load(writeFile(t, minimalYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.ServerID != "from-env" {
		t.Errorf("ServerID = %q, want from-env", c.ServerID)
	}
	c2, err := Parse([]byte(minimalYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c2.ServerID != "from-env" {
		t.Errorf("Parse: ServerID = %q, want from-env", c2.ServerID)
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown top-level field", minimalYAML + "listne:\n  clients: \":1\"\n", `unknown field "listne"`},
		{"unknown nested field", minimalYAML + "limits:\n  maxFrameByte: 10\n", `unknown field "maxFrameByte"`},
		{"unknown expiry field", minimalYAML + "kafka:\n  expiry:\n    commitInterval: 1s\n", `unknown field "commitInterval"`},
		{"duplicate key", minimalYAML + "serverID: again\n", `"serverID" already set`},
		{"bad duration", minimalYAML + "limits:\n  idleTimeout: 90\n", "duration must be a string"},
		{"negative duration", minimalYAML + "drain:\n  spreadWindow: -1s\n", "must not be negative"},
		{"wrong type", minimalYAML + "limits:\n  maxConnections: many\n", "maxConnections"},
		{"invalid after defaults", minimalYAML + "logging:\n  level: loud\n", "logging.level"},
		{"no auth", "serverID: x\n", "auth: exactly one of jwt or webhook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(writeFile(t, tt.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := load(filepath.Join(t.TempDir(), "absent.yaml"), noEnv)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}

func TestFullExampleValidates(t *testing.T) {
	c, err := load("testdata/full.yaml", noEnv)
	if err != nil {
		t.Fatalf("testdata/full.yaml: %v", err)
	}
	// The example spells out every default; defaulting it must change nothing but the fields
	// it sets to non-defaults.
	if c.Limits.MaxFrameBytes != DefaultMaxFrameBytes || c.Drain.HardDeadline.Duration != DefaultHardDeadline ||
		len(c.Routes) != 2 || len(c.Kafka.Brokers) != 2 || c.Auth.Webhook != nil {
		t.Errorf("unexpected values from full.yaml: %+v", c)
	}
}

// TestFullExampleShowsEveryField keeps the documentation example complete: every JSON field
// of Config must appear in testdata/full.yaml, commented out or not.
func TestFullExampleShowsEveryField(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range jsonFieldNames(reflect.TypeFor[Config](), nil) {
		re := regexp.MustCompile(`(?m)^[ \t#]*(- )?` + regexp.QuoteMeta(name) + `:`)
		if !re.Match(data) {
			t.Errorf("testdata/full.yaml does not show field %q", name)
		}
	}
}

// jsonFieldNames lists the JSON names of t's fields, recursing into structs, pointers and
// slices of structs, but not into Duration (a leaf).
func jsonFieldNames(t reflect.Type, seen []string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeFor[Duration]() {
		return seen
	}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		seen = append(seen, name)
		seen = jsonFieldNames(f.Type, seen)
	}
	return seen
}

// TestRenderRoundTrip: the operator renders a Config with sigs.k8s.io/yaml; what it writes
// must load back to the same Config.
func TestRenderRoundTrip(t *testing.T) {
	c, err := load("testdata/full.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "hardDeadline: 45s") {
		t.Errorf("rendered durations are not Go duration strings:\n%s", out)
	}
	back, err := parse(out, noEnv)
	if err != nil {
		t.Fatalf("rendered config does not load: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed the config:\n got %+v\nwant %+v", back, c)
	}
}

func TestLoadResolvesKeyFilesAgainstTheConfigDirectory(t *testing.T) {
	yaml := strings.Replace(minimalYAML, "hs256SecretFile: /keys/hs", "hs256SecretFile: keys/hs", 1)
	if yaml == minimalYAML {
		t.Fatal("minimalYAML no longer names /keys/hs: update this test")
	}
	path := writeFile(t, yaml)
	c, err := load(path, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(path), "keys", "hs"); c.Auth.JWT.HS256SecretFile != want {
		t.Errorf("hs256SecretFile = %q, want %q", c.Auth.JWT.HS256SecretFile, want)
	}
}

func TestLoadResolvesKafkaFilesAgainstTheConfigDirectory(t *testing.T) {
	yaml := minimalYAML + `kafka:
  brokers: [kafka:9093]
  downlinkTopic: d
  receiptsTopic: r
  tls: {caFile: tls/ca.crt, certFile: /abs/tls.crt, keyFile: tls/tls.key}
  sasl: {usernameFile: sasl/username, passwordFile: sasl/password}
`
	path := writeFile(t, yaml)
	c, err := load(path, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	for _, f := range []struct{ got, want string }{
		{c.Kafka.TLS.CAFile, filepath.Join(dir, "tls", "ca.crt")},
		{c.Kafka.TLS.CertFile, "/abs/tls.crt"},
		{c.Kafka.TLS.KeyFile, filepath.Join(dir, "tls", "tls.key")},
		{c.Kafka.SASL.UsernameFile, filepath.Join(dir, "sasl", "username")},
		{c.Kafka.SASL.PasswordFile, filepath.Join(dir, "sasl", "password")},
	} {
		if f.got != f.want {
			t.Errorf("file = %q, want %q", f.got, f.want)
		}
	}
	if c.Kafka.SASL.Mechanism != DefaultKafkaSASLMechanism {
		t.Errorf("kafka.sasl.mechanism = %q, want the default %q", c.Kafka.SASL.Mechanism, DefaultKafkaSASLMechanism)
	}
}

// The operator renders the clients listener's certificate and the webhook's CAs relative to
// the config file too (tls/..., webhook-ca/...).
func TestLoadResolvesTLSFilesAgainstTheConfigDirectory(t *testing.T) {
	withTLS := minimalYAML + `listen:
  tls: {certFile: tls/tls.crt, keyFile: /abs/tls.key}
`
	webhook := `
serverID: from-file
auth:
  webhook: {url: "https://auth.example.com/verify", caFile: webhook-ca/ca.crt}
`
	var files []struct{ got, want string }
	for _, yaml := range []string{withTLS, webhook} {
		path := writeFile(t, yaml)
		c, err := load(path, mapEnv(nil))
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Dir(path)
		if l := c.Listen.TLS; l != nil {
			files = append(files, struct{ got, want string }{l.CertFile, filepath.Join(dir, "tls", "tls.crt")},
				struct{ got, want string }{l.KeyFile, "/abs/tls.key"})
		}
		if w := c.Auth.Webhook; w != nil {
			files = append(files, struct{ got, want string }{w.CAFile, filepath.Join(dir, "webhook-ca", "ca.crt")})
		}
	}
	if len(files) != 3 {
		t.Fatalf("checked %d files, want 3", len(files))
	}
	for _, f := range files {
		if f.got != f.want {
			t.Errorf("file = %q, want %q", f.got, f.want)
		}
	}
}
