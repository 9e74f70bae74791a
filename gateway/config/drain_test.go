package config

import (
	"testing"
	"time"
)

func TestTerminationGracePeriod(t *testing.T) {
	tests := []struct {
		hard time.Duration
		want time.Duration
	}{
		{DefaultHardDeadline, 55 * time.Second},
		{0, 10 * time.Second},
		{2 * time.Minute, 2*time.Minute + 10*time.Second},
	}
	for _, tt := range tests {
		got := Drain{HardDeadline: Duration{tt.hard}}.TerminationGracePeriod()
		if got != tt.want {
			t.Errorf("hardDeadline %s: got %s, want %s", tt.hard, got, tt.want)
		}
	}
}
