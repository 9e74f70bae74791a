package kafkasec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SASL mechanism names, as Kafka spells them (sasl.enabled.mechanisms).
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Mechanism returns kafka-go's SASL mechanism name (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)
// for these credentials.
func Mechanism(name, username, password string) (sasl.Mechanism, error) {
	if username == "" || password == "" {
		return nil, errors.New("kafka SASL: the username and the password must not be empty")
	}
	switch name {
	case Plain:
		return plain.Mechanism{Username: username, Password: password}, nil
	case ScramSHA256, ScramSHA512:
		algo := scram.SHA256
		if name == ScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, username, password)
		if err != nil {
			return nil, fmt.Errorf("kafka SASL: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("kafka SASL: mechanism %q is not one of %s, %s, %s", name, Plain, ScramSHA256, ScramSHA512)
}

// fileMechanism reads the credentials from their files each time a connection authenticates,
// so a rotated password (a Secret's mounted files change in place) applies to the next
// connection without a restart. kafka-go calls Start once per new broker connection.
type fileMechanism struct {
	name, usernameFile, passwordFile string
}

// Name is the mechanism's name for the SASL handshake.
func (m fileMechanism) Name() string { return m.name }

// Start reads the credentials and starts the exchange with them.
func (m fileMechanism) Start(ctx context.Context) (sasl.StateMachine, []byte, error) {
	mech, err := m.load()
	if err != nil {
		return nil, nil, err
	}
	return mech.Start(ctx)
}

func (m fileMechanism) load() (sasl.Mechanism, error) {
	user, err := readSecret(m.usernameFile)
	if err != nil {
		return nil, &CredentialsError{Err: err}
	}
	pass, err := readSecret(m.passwordFile)
	if err != nil {
		return nil, &CredentialsError{Err: err}
	}
	mech, err := Mechanism(m.name, user, pass)
	if err != nil {
		return nil, &CredentialsError{Err: err}
	}
	return mech, nil
}

// readSecret reads a file mounted from a Secret, without its trailing line break (files
// written by editors and `echo` end with one; no password does).
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// CredentialsError: the SASL credentials could not be read or used.
type CredentialsError struct{ Err error }

func (e *CredentialsError) Error() string { return "kafka SASL credentials: " + e.Err.Error() }

func (e *CredentialsError) Unwrap() error { return e.Err }
