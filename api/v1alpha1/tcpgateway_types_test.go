package v1alpha1

import (
	"testing"
	"time"
)

func TestDurationParse(t *testing.T) {
	tests := []struct {
		in      Duration
		want    time.Duration
		wantErr bool
	}{
		{"5s", 5 * time.Second, false},
		{"1m30s", 90 * time.Second, false},
		{"1.5h", 90 * time.Minute, false},
		{"500ms", 500 * time.Millisecond, false},
		{"", 0, true},
		{"5", 0, true},
		{"soon", 0, true},
		{"99999999999999h", 0, true}, // beyond time.Duration
	}
	for _, tt := range tests {
		got, err := tt.in.Parse()
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Duration(%q).Parse() = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
