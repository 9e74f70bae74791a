package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// lookupEnv has the signature of os.LookupEnv; tests pass a map instead of touching the
// process environment.
type lookupEnv func(key string) (string, bool)

// envOverride is one environment variable that overrides the file. An empty value counts as
// unset, so a Downward API field that resolves to "" cannot blank out a configured value.
type envOverride struct {
	name  string
	apply func(c *Config, value string)
}

// envOverrides is the whole set of environment overrides, applied in this order. They exist
// for values that differ per pod or per environment while the ConfigMap is shared:
//
//	POD_NAME              → serverID, only when the file left it empty (StatefulSet pod name)
//	TCPGW_SERVER_ID       → serverID, always
//	TCPGW_LISTEN_CLIENTS  → listen.clients
//	TCPGW_LISTEN_ADMIN    → listen.admin
//	TCPGW_LISTEN_CONTROL  → listen.control (the operator sets it, so that the path follows the
//	                        socket's volume mount wherever a node maps it)
//	TCPGW_KAFKA_BROKERS   → kafka.brokers, comma-separated, blanks dropped
//	TCPGW_BIND_HOST       → host of listen addresses that have none, after defaults (bindHost)
var envOverrides = []envOverride{
	{"POD_NAME", func(c *Config, v string) {
		if c.ServerID == "" {
			c.ServerID = v
		}
	}},
	{"TCPGW_SERVER_ID", func(c *Config, v string) { c.ServerID = v }},
	{"TCPGW_LISTEN_CLIENTS", func(c *Config, v string) { c.Listen.Clients = v }},
	{"TCPGW_LISTEN_ADMIN", func(c *Config, v string) { c.Listen.Admin = v }},
	{"TCPGW_LISTEN_CONTROL", func(c *Config, v string) { c.Listen.Control = v }},
	{"TCPGW_KAFKA_BROKERS", func(c *Config, v string) { c.Kafka.Brokers = splitList(v) }},
}

// bindHost applies TCPGW_BIND_HOST: the host for listen addresses that name none (":7000"):
// listen.clients, listen.admin and listen.websocket.address.
// The local node agent sets it to each pod's 127.0.x address, since its pods share one network
// namespace. Real clusters leave it unset: binding only the pod IP would break kubectl
// port-forward, which connects to localhost inside the pod.
func (c *Config) bindHost(env lookupEnv) {
	host, ok := env("TCPGW_BIND_HOST")
	if !ok || host == "" {
		return
	}
	addrs := []*string{&c.Listen.Clients, &c.Listen.Admin}
	if c.Listen.WebSocket != nil {
		addrs = append(addrs, &c.Listen.WebSocket.Address)
	}
	for _, addr := range addrs {
		if h, port, err := net.SplitHostPort(*addr); err == nil && h == "" {
			*addr = net.JoinHostPort(host, port)
		}
	}
}

// Load reads the YAML file at path and returns a defaulted, validated Config. Unknown fields
// are an error so that a typo in a ConfigMap fails at start-up instead of being ignored.
// Order: file, environment overrides (see envOverrides), Default, Validate.
func Load(path string) (*Config, error) {
	return load(path, os.LookupEnv)
}

// Parse is Load for YAML already in memory. It reads the process environment too.
func Parse(data []byte) (*Config, error) {
	return parse(data, os.LookupEnv)
}

func load(path string, env lookupEnv) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("while reading config: %w", err)
	}
	c, err := parse(data, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Key, certificate and credential files named by a relative path are relative to the
	// config file's directory, so a config and its keys mounted together (the operator renders
	// "keys/<name>") work wherever the volume is mounted. Parse, having no file, leaves them
	// relative to the working dir.
	for _, f := range c.secretFiles() {
		if *f != "" && !filepath.IsAbs(*f) {
			*f = filepath.Join(filepath.Dir(path), *f)
		}
	}
	return c, nil
}

// secretFiles are the configured files mounted from Secrets (or a ConfigMap, for the webhook's
// CAs): auth keys, the rebalance key, the clients listener's certificate, the webhook's CAs, Kafka TLS material
// and credentials.
func (c *Config) secretFiles() []*string {
	files := []*string{&c.Listen.RebalanceKeyFile}
	if j := c.Auth.JWT; j != nil {
		files = append(files, &j.HS256SecretFile, &j.RS256PublicKeyFile, &j.KeySetFile)
	}
	if w := c.Auth.Webhook; w != nil {
		files = append(files, &w.CAFile)
	}
	if t := c.Listen.TLS; t != nil {
		files = append(files, &t.CertFile, &t.KeyFile)
	}
	if t := c.Kafka.TLS; t != nil {
		files = append(files, &t.CAFile, &t.CertFile, &t.KeyFile)
	}
	if s := c.Kafka.SASL; s != nil {
		files = append(files, &s.UsernameFile, &s.PasswordFile)
	}
	return files
}

func parse(data []byte, env lookupEnv) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("while parsing config: %w", err)
	}
	c.applyEnv(env)
	c.Default()
	c.bindHost(env)
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config:\n%w", err)
	}
	return &c, nil
}

func (c *Config) applyEnv(env lookupEnv) {
	for _, o := range envOverrides {
		if v, ok := env(o.name); ok && strings.TrimSpace(v) != "" {
			o.apply(c, strings.TrimSpace(v))
		}
	}
}

// splitList splits a comma-separated list, trimming blanks and dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
