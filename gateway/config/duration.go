package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// MarshalJSON writes the duration as a Go duration string ("5s") so that a rendered ConfigMap
// reads the way a person would write it.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.String())
}

// UnmarshalJSON accepts only Go duration strings. Bare numbers are rejected rather than guessed
// at (seconds? nanoseconds?), and negative values are rejected because every duration in the
// schema is a timeout, an interval or an age. null leaves the value unchanged.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"5s\" or \"1m30s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a Go duration such as \"5s\" or \"1m30s\"", s)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	d.Duration = v
	return nil
}
