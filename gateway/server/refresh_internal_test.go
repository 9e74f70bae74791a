package server

import "testing"

func TestLaterExpiry(t *testing.T) {
	for _, tt := range []struct{ current, refreshed, want int64 }{
		{0, 0, 0}, {0, 5, 0}, {5, 0, 0}, {5, 7, 7}, {7, 5, 7},
	} {
		if got := laterExpiry(tt.current, tt.refreshed); got != tt.want {
			t.Errorf("laterExpiry(%d, %d) = %d, want %d", tt.current, tt.refreshed, got, tt.want)
		}
	}
}
