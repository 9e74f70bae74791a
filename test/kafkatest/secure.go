package kafkatest

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/tcpgateway/tcpgateway/test/repo"
)

// EnvSecureDir names the environment variable that holds the state directory of an already
// running secured broker (`KAFKA_SECURITY=sasl_ssl hack/kafka.sh start`), set by hack/test.sh.
const EnvSecureDir = "TCPGW_KAFKA_SECURE_DIR"

// Secure describes a secured test broker: hack/kafka.sh in sasl_ssl mode (its header lists
// the listeners and files). All paths are absolute; the files are PEM or plain text.
type Secure struct {
	// Bootstrap is the SASL_SSL listener: TLS with a certificate signed by CAFile (SANs
	// IP:127.0.0.1 and DNS:localhost), then SASL PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Bootstrap string
	// ExpiredBootstrap is a SASL_SSL listener whose server certificate (same CA) has expired.
	ExpiredBootstrap string
	// MTLSBootstrap is a TLS listener (no SASL) that requires a client certificate signed by
	// CAFile, such as ClientCertFile/ClientKeyFile.
	MTLSBootstrap string
	// PlaintextBootstrap is the unsecured listener of the same broker, for test set-up
	// (CreateTopic, SetSCRAMPassword); never the subject of a test of security.
	PlaintextBootstrap string

	CAFile      string // the CA of every certificate of this broker
	OtherCAFile string // an unrelated CA: trusting only it must fail the handshake
	// ClientCertFile and ClientKeyFile are a client certificate (CN=tcpgw-client) for the
	// MTLS listener; the key is unencrypted PKCS#8.
	ClientCertFile string
	ClientKeyFile  string

	// Username and Password are valid for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512. The same
	// values are in UsernameFile and PasswordFile, without a trailing newline.
	Username     string
	Password     string
	UsernameFile string
	PasswordFile string
}

// The secured broker this process started, if any.
var (
	secureOnce  sync.Once
	ownSecure   *Secure
	ownSecErr   error
	ownSecState string // KAFKA_STATE_DIR of our secured broker; "" when we started none
)

// StartSecure returns the secured test broker. It is the one whose state directory
// TCPGW_KAFKA_SECURE_DIR names when set; otherwise the first call starts one for this test
// binary (later calls reuse it; Main stops it). Like Bootstrap, it never skips.
func StartSecure(t testing.TB) *Secure {
	t.Helper()
	if dir := strings.TrimSpace(os.Getenv(EnvSecureDir)); dir != "" {
		s, err := LoadSecure(dir)
		if err != nil {
			t.Fatalf("kafkatest: %s=%s: %v", EnvSecureDir, dir, err)
		}
		return s
	}
	secureOnce.Do(func() { ownSecure, ownSecErr = startOwnSecure() })
	if ownSecErr != nil {
		t.Fatalf("kafkatest: no secured Kafka broker (%s unset, starting one failed): %v", EnvSecureDir, ownSecErr)
	}
	return ownSecure
}

// LoadSecure describes the running secured broker of a hack/kafka.sh state directory.
func LoadSecure(dir string) (*Secure, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("not a running sasl_ssl broker's state dir: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	mode, err := read("security")
	if err != nil {
		return nil, err
	}
	if mode != "sasl_ssl" {
		return nil, fmt.Errorf("the broker in %s runs in %s mode, want sasl_ssl", dir, mode)
	}
	s := &Secure{
		CAFile:         filepath.Join(dir, "ca.crt"),
		OtherCAFile:    filepath.Join(dir, "other-ca.crt"),
		ClientCertFile: filepath.Join(dir, "client.crt"),
		ClientKeyFile:  filepath.Join(dir, "client.key"),
		UsernameFile:   filepath.Join(dir, "sasl.username"),
		PasswordFile:   filepath.Join(dir, "sasl.password"),
	}
	for _, f := range []struct {
		dst  *string
		name string
	}{
		{&s.Bootstrap, "bootstrap"},
		{&s.ExpiredBootstrap, "expired.bootstrap"},
		{&s.MTLSBootstrap, "mtls.bootstrap"},
		{&s.PlaintextBootstrap, "plaintext.bootstrap"},
		{&s.Username, "sasl.username"},
		{&s.Password, "sasl.password"},
	} {
		if *f.dst, err = read(f.name); err != nil {
			return nil, err
		}
	}
	for _, f := range []string{s.CAFile, s.OtherCAFile, s.ClientCertFile, s.ClientKeyFile} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("not a running sasl_ssl broker's state dir: %w", err)
		}
	}
	return s, nil
}

// CreateTopic creates a unique topic for the test, as the package's CreateTopic does, through
// the plaintext listener; clients then use it through Bootstrap.
func (s *Secure) CreateTopic(t testing.TB, partitions int) string {
	t.Helper()
	return CreateTopic(t, s.PlaintextBootstrap, partitions)
}

// TLSConfig returns a client TLS configuration that trusts only caFile (TLS 1.2 or newer),
// e.g. s.CAFile, or s.OtherCAFile for a handshake that must fail.
func TLSConfig(t testing.TB, caFile string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("kafkatest: no certificate in %s", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// Mechanism returns the SASL mechanism name ("PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512")
// with the given credentials, e.g. s.Username and s.Password.
func Mechanism(t testing.TB, name, username, password string) sasl.Mechanism {
	t.Helper()
	switch name {
	case "PLAIN":
		return plain.Mechanism{Username: username, Password: password}
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		algo := scram.SHA256
		if name == "SCRAM-SHA-512" {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, username, password)
		if err != nil {
			t.Fatalf("kafkatest: %s: %v", name, err)
		}
		return m
	default:
		t.Fatalf("kafkatest: unknown SASL mechanism %q", name)
		return nil
	}
}

// SetSCRAMPassword creates or changes the SCRAM credential of user for mechanism
// ("SCRAM-SHA-256" or "SCRAM-SHA-512") on the running broker, through the plaintext
// listener: a test of password rotation, or a user of the test's own. The change is
// broker-wide: do not change s.Username's password on a shared broker. PLAIN users cannot be
// changed at run time (they are in the listener's JAAS config).
func (s *Secure) SetSCRAMPassword(t testing.TB, mechanism, user, password string) {
	t.Helper()
	var (
		mech   kafka.ScramMechanism
		newH   func() hash.Hash
		keyLen int
	)
	switch mechanism {
	case "SCRAM-SHA-256":
		mech, newH, keyLen = kafka.ScramMechanismSha256, sha256.New, sha256.Size
	case "SCRAM-SHA-512":
		mech, newH, keyLen = kafka.ScramMechanismSha512, sha512.New, sha512.Size
	default:
		t.Fatalf("kafkatest: SetSCRAMPassword: unknown mechanism %q", mechanism)
	}
	// RFC 5802: SaltedPassword = Hi(password, salt, i), which is PBKDF2 with the HMAC of the
	// mechanism's hash; the broker derives the stored and server keys from it.
	const iterations = 4096
	salt := make([]byte, 16)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails
	salted, err := pbkdf2.Key(newH, password, salt, iterations, keyLen)
	if err != nil {
		t.Fatalf("kafkatest: SetSCRAMPassword: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(s.PlaintextBootstrap), Timeout: 10 * time.Second}
	resp, err := client.AlterUserScramCredentials(ctx, &kafka.AlterUserScramCredentialsRequest{
		Upsertions: []kafka.UserScramCredentialsUpsertion{{
			Name: user, Mechanism: mech, Iterations: iterations, Salt: salt, SaltedPassword: salted,
		}},
	})
	if err == nil {
		for _, r := range resp.Results {
			err = errors.Join(err, r.Error)
		}
	}
	if err != nil {
		t.Fatalf("kafkatest: set %s credential of %q: %v", mechanism, user, err)
	}
	// The answer comes once the controller committed the change; the broker applies it from
	// the metadata log a moment later. Return only when the new password authenticates.
	d := &kafka.Dialer{TLS: TLSConfig(t, s.CAFile), SASLMechanism: Mechanism(t, mechanism, user, password), Timeout: 5 * time.Second}
	for {
		conn, err := d.DialContext(ctx, "tcp", s.Bootstrap)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kafkatest: the new %s password of %q does not authenticate: %v", mechanism, user, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startOwnSecure starts a secured broker for this process, like startOwn.
func startOwnSecure() (*Secure, error) {
	dir, err := os.MkdirTemp("", "tcpgw-kafka-secure-")
	if err != nil {
		return nil, err
	}
	ownSecState = dir
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	env := []string{"KAFKA_STATE_DIR=" + dir, "KAFKA_SECURITY=sasl_ssl", "KAFKA_OWNER_PID=" + strconv.Itoa(os.Getpid())}
	if _, err := repo.Script(ctx, env, "kafka.sh", "start"); err != nil {
		return nil, err
	}
	return LoadSecure(dir)
}
