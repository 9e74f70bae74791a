package kafkasec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMechanism(t *testing.T) {
	for _, name := range []string{Plain, ScramSHA256, ScramSHA512} {
		m, err := Mechanism(name, "alice", "s3cret")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Name() != name {
			t.Errorf("Name() = %q, want %q", m.Name(), name)
		}
	}
	for _, tt := range []struct{ name, user, pass, want string }{
		{"GSSAPI", "alice", "x", `mechanism "GSSAPI" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{"scram-sha-512", "alice", "x", `mechanism "scram-sha-512" is not one of`},
		{Plain, "", "x", "must not be empty"},
		{ScramSHA512, "alice", "", "must not be empty"},
	} {
		if _, err := Mechanism(tt.name, tt.user, tt.pass); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Mechanism(%q, %q, %q) err = %v, want containing %q", tt.name, tt.user, tt.pass, err, tt.want)
		}
	}
}

// TestFileMechanismRereadsCredentials: a password rotated in its file is used by the next
// connection (PLAIN's initial response carries it).
func TestFileMechanismRereadsCredentials(t *testing.T) {
	dir := t.TempDir()
	user, pass := filepath.Join(dir, "username"), filepath.Join(dir, "password")
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(user, "alice\n")
	write(pass, "first\r\n")
	m := fileMechanism{name: Plain, usernameFile: user, passwordFile: pass}
	initial := func() string {
		_, ir, err := m.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return string(ir)
	}
	if got, want := initial(), "\x00alice\x00first"; got != want {
		t.Fatalf("initial response %q, want %q (one trailing line break dropped)", got, want)
	}
	write(pass, "second")
	if got, want := initial(), "\x00alice\x00second"; got != want {
		t.Fatalf("after rotation: initial response %q, want %q", got, want)
	}
	write(pass, "")
	_, _, err := m.Start(context.Background())
	var ce *CredentialsError
	if !errors.As(err, &ce) || Reason(err) != ReasonAuthFailed {
		t.Fatalf("empty password file: err = %v (reason %q), want a CredentialsError (kafka_auth_failed)", err, Reason(err))
	}
	if err := os.Remove(pass); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Start(context.Background()); !errors.Is(err, os.ErrNotExist) || Reason(err) != ReasonAuthFailed {
		t.Fatalf("missing password file: err = %v (reason %q)", err, Reason(err))
	}
}
