package securekafka

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/hostile"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

// secureBroker is the secured test broker; the tests are skipped with -short (make
// test-unit: no external components).
func secureBroker(t *testing.T) *kafkatest.Secure {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the secured Kafka broker")
	}
	return kafkatest.StartSecure(t)
}

// kafkaSide is one way to reach the secured broker: its address and the gateway's kafka.tls
// and kafka.sasl for it. The push SDK and tcpgwctl are given the same settings.
type kafkaSide struct {
	brokers string
	tls     *config.KafkaTLS
	sasl    *config.KafkaSASL
}

// startGateway starts a gateway process on the topics with side's Kafka settings; with
// waitReady it waits for /readyz to answer 200.
func startGateway(t *testing.T, side kafkaSide, topic, receipts string, waitReady bool) *hostile.Gateway {
	t.Helper()
	return hostile.Start(t, hostile.Options{
		NoWaitReady: !waitReady,
		Configure: func(c *config.Config) {
			c.Kafka = config.Kafka{
				Brokers: []string{side.brokers}, DownlinkTopic: topic, ReceiptsTopic: receipts,
				TLS: side.tls, SASL: side.sasl,
			}
		},
	})
}

// publisherOptions are the push SDK's options for side, built from the same files with
// kafkasec's helpers, as a backend would from its own Secrets.
func publisherOptions(t *testing.T, side kafkaSide, topic, receipts string) push.Options {
	t.Helper()
	o := push.Options{Brokers: []string{side.brokers}, Topic: topic, ReceiptsTopic: receipts}
	if k := side.tls; k != nil {
		cfg, err := kafkasec.TLSConfig(readFile(t, k.CAFile), readFile(t, k.CertFile), readFile(t, k.KeyFile), k.ServerName)
		if err != nil {
			t.Fatal(err)
		}
		o.TLS = cfg
	}
	if s := side.sasl; s != nil {
		m, err := kafkasec.Mechanism(s.Mechanism, string(readFile(t, s.UsernameFile)), string(readFile(t, s.PasswordFile)))
		if err != nil {
			t.Fatal(err)
		}
		o.SASL = m
	}
	return o
}

// tcpgwctlKafkaArgs are `tcpgwctl push` and its Kafka flags for side.
func tcpgwctlKafkaArgs(t *testing.T, side kafkaSide) []string {
	args := []string{"push", "-brokers", side.brokers}
	if k := side.tls; k != nil {
		args = append(args, "-kafka-tls")
		for _, f := range []struct{ flag, value string }{
			{"-kafka-ca", k.CAFile}, {"-kafka-cert", k.CertFile}, {"-kafka-key", k.KeyFile}, {"-kafka-server-name", k.ServerName},
		} {
			if f.value != "" {
				args = append(args, f.flag, f.value)
			}
		}
	}
	if s := side.sasl; s != nil {
		args = append(args, "-sasl-mechanism", s.Mechanism, "-sasl-username", string(readFile(t, s.UsernameFile)),
			"-sasl-password-file", s.PasswordFile)
	}
	return args
}

// tcpgwctl runs the tcpgwctl binary with args (and extra environment), bounded in time; it
// returns its exit code and output.
func tcpgwctl(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	bin := gwproc.Build(t, false).Tcpgwctl
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("tcpgwctl %s: still running after 60s:\n%s", strings.Join(args, " "), out)
	}
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("tcpgwctl: %v", err)
	}
	return 0, string(out)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFile writes data to a file of the test's own directory and returns its path.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
