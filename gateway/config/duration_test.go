package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDurationRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{0, time.Millisecond, 5 * time.Second, 90*time.Second + 500*time.Millisecond, 10 * time.Minute} {
		b, err := json.Marshal(Duration{d})
		if err != nil {
			t.Fatalf("marshal %s: %v", d, err)
		}
		var got Duration
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if got.Duration != d {
			t.Errorf("round trip %s via %s = %s", d, b, got.Duration)
		}
	}
}

func TestDurationMarshalIsAGoString(t *testing.T) {
	b, err := json.Marshal(struct {
		T Duration `json:"t"`
	}{Duration{5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"t":"5s"}` {
		t.Errorf("got %s, want {\"t\":\"5s\"}", b)
	}
}

func TestDurationUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: `"5s"`, want: 5 * time.Second},
		{in: `"1m30s"`, want: 90 * time.Second},
		{in: `"250ms"`, want: 250 * time.Millisecond},
		{in: `"0s"`, want: 0},
		{in: `null`, want: 7}, // unchanged
		{in: `"-5s"`, wantErr: "must not be negative"},
		{in: `"5 seconds"`, wantErr: `invalid duration "5 seconds"`},
		{in: `"5"`, wantErr: `invalid duration "5"`},
		{in: `""`, wantErr: `invalid duration ""`},
		{in: `5`, wantErr: "must be a string"},
		{in: `true`, wantErr: "must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d := Duration{7}
			err := json.Unmarshal([]byte(tt.in), &d)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Duration != tt.want {
				t.Errorf("got %s, want %s", d.Duration, tt.want)
			}
		})
	}
}
