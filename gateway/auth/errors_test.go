package auth

import (
	"errors"
	"fmt"
	"regexp"
	"testing"
)

func TestErrorMatching(t *testing.T) {
	cause := errors.New("token is expired")
	err := fmt.Errorf("handshake: %w", &Error{Reason: ReasonExpiredToken, Err: cause})

	if !errors.Is(err, ErrExpiredToken) {
		t.Error("errors.Is(err, ErrExpiredToken) = false")
	}
	if errors.Is(err, ErrInvalidToken) {
		t.Error("errors.Is(err, ErrInvalidToken) = true for an expired token")
	}
	if !errors.Is(err, cause) {
		t.Error("the cause is not reachable through Unwrap")
	}
	var ae *Error
	if !errors.As(err, &ae) || ae.Reason != ReasonExpiredToken {
		t.Errorf("errors.As = %v, %+v", errors.As(err, &ae), ae)
	}
	if got := ReasonOf(err); got != ReasonExpiredToken {
		t.Errorf("ReasonOf = %q", got)
	}
	if got := ReasonOf(errors.New("other")); got != "" {
		t.Errorf("ReasonOf(non-auth error) = %q, want empty", got)
	}
	if got, want := err.Error(), "handshake: auth: expired_token: token is expired"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestReasonsAreStableLabels pins the reason strings: they are metric labels and wire values.
func TestReasonsAreStableLabels(t *testing.T) {
	want := []string{"missing_token", "invalid_token", "expired_token", "unknown_key", "denied", "webhook_unavailable"}
	got := Reasons()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Reasons() = %q, want %q", got, want)
	}
	label := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	for _, r := range got {
		if !label.MatchString(r) {
			t.Errorf("reason %q is not lower_snake", r)
		}
	}
}
