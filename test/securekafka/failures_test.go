package securekafka

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// TestKafkaSecurityFailures: each way TLS or SASL to Kafka fails gets its own reason, the
// same in the gateway's /readyz, its metric and its log (with what to fix), in the push SDK's
// error (kafkasec.Reason) and in tcpgwctl's message. Where the fix is a file (password, CA
// bundle), rewriting the file makes the running gateway ready: no restart.
func TestKafkaSecurityFailures(t *testing.T) {
	s := secureBroker(t)
	topic, receipts := s.CreateTopic(t, 1), s.CreateTopic(t, 1)
	ca := &config.KafkaTLS{CAFile: s.CAFile}
	scram := &config.KafkaSASL{Mechanism: kafkasec.ScramSHA512, UsernameFile: s.UsernameFile, PasswordFile: s.PasswordFile}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nothing := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name string
		side func(t *testing.T) kafkaSide
		want string
		// fix, when set, rewrites a file of the side so that it works.
		fix func(t *testing.T, side kafkaSide)
	}{
		{
			name: "wrong password",
			side: func(t *testing.T) kafkaSide {
				wrong := writeFile(t, "password", []byte("not-"+s.Password))
				return kafkaSide{s.Bootstrap, ca, &config.KafkaSASL{Mechanism: kafkasec.ScramSHA512, UsernameFile: s.UsernameFile, PasswordFile: wrong}}
			},
			want: kafkasec.ReasonAuthFailed,
			fix:  func(t *testing.T, side kafkaSide) { rewrite(t, side.sasl.PasswordFile, []byte(s.Password)) },
		},
		{
			name: "unknown CA",
			side: func(t *testing.T) kafkaSide {
				return kafkaSide{s.Bootstrap, &config.KafkaTLS{CAFile: writeFile(t, "ca.crt", readFile(t, s.OtherCAFile))}, scram}
			},
			want: kafkasec.ReasonTLSFailed,
			fix:  func(t *testing.T, side kafkaSide) { rewrite(t, side.tls.CAFile, readFile(t, s.CAFile)) },
		},
		{
			name: "expired server certificate",
			side: func(*testing.T) kafkaSide { return kafkaSide{s.ExpiredBootstrap, ca, scram} },
			want: kafkasec.ReasonTLSFailed,
		},
		{
			name: "name mismatch",
			side: func(*testing.T) kafkaSide {
				return kafkaSide{s.Bootstrap, &config.KafkaTLS{CAFile: s.CAFile, ServerName: "kafka.example.com"}, scram}
			},
			want: kafkasec.ReasonTLSFailed,
		},
		{
			name: "client certificate required, none given",
			side: func(*testing.T) kafkaSide { return kafkaSide{s.MTLSBootstrap, ca, nil} },
			want: kafkasec.ReasonTLSFailed,
		},
		{
			name: "broker unreachable",
			side: func(*testing.T) kafkaSide { return kafkaSide{nothing, ca, scram} },
			want: kafkasec.ReasonUnreachable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			side := tt.side(t)
			g := startGateway(t, side, topic, receipts, false)
			wait.For(t, 30*time.Second, "/readyz to say "+tt.want, func() bool {
				r, err := g.Readyz()
				return err == nil && r == "not ready: "+tt.want
			})
			if n := g.Metric("tcpgw_kafka_errors_total", "reason", tt.want); n < 1 {
				t.Errorf("tcpgw_kafka_errors_total{reason=%q} = %v, want >= 1", tt.want, n)
			}
			if logged := g.Log.String(); !strings.Contains(logged, `"reason":"`+tt.want+`"`) || !strings.Contains(logged, `"fix":"check `) {
				t.Errorf("the log does not say %s and what to fix:\n%s", tt.want, g.Log.Tail(20))
			}

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			o := publisherOptions(t, side, topic, receipts)
			if p, err := push.New(ctx, o); kafkasec.Reason(err) != tt.want {
				if p != nil {
					_ = p.Close()
				}
				t.Errorf("push.New: err = %v (reason %q), want %s", err, kafkasec.Reason(err), tt.want)
			}
			o.ReceiptsTopic = "" // fire-and-forget: the error comes from the first push
			p, err := push.New(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Push(ctx, push.Message{Target: push.User("alice"), Payload: []byte("x")})
			_ = p.Close()
			if kafkasec.Reason(err) != tt.want {
				t.Errorf("Push: err = %v (reason %q), want %s", err, kafkasec.Reason(err), tt.want)
			}
			args := append(tcpgwctlKafkaArgs(t, side), "-topic", topic, "-receipts", receipts, "-user", "alice", "-ack", "-timeout", "20s", "x")
			if code, out := tcpgwctl(t, nil, args...); code != 1 || !strings.Contains(out, "["+tt.want+"]") {
				t.Errorf("tcpgwctl push: exit %d, want 1 with [%s]:\n%s", code, tt.want, out)
			}

			if tt.fix != nil {
				tt.fix(t, side)
				if err := g.WaitReady(60 * time.Second); err != nil {
					t.Fatalf("after fixing the file the gateway did not become ready without a restart: %v", err)
				}
			}
		})
	}
}

// TestMutualTLS: a gateway with a client certificate (kafka.tls.certFile, keyFile) is ready
// on a listener that requires one, and the push SDK with the same certificate publishes there.
func TestMutualTLS(t *testing.T) {
	s := secureBroker(t)
	topic, receipts := s.CreateTopic(t, 1), s.CreateTopic(t, 1)
	side := kafkaSide{brokers: s.MTLSBootstrap, tls: &config.KafkaTLS{CAFile: s.CAFile, CertFile: s.ClientCertFile, KeyFile: s.ClientKeyFile}}
	startGateway(t, side, topic, receipts, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := push.New(ctx, publisherOptions(t, side, topic, receipts))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Push(ctx, push.Message{Target: push.User("alice"), Payload: []byte("x")}); err != nil {
		t.Fatalf("push over mTLS: %v", err)
	}
}

// rewrite replaces a file's content in place, as a Secret's rotation does for the pod.
func rewrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
