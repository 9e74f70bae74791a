//go:build race

package auth

// raceEnabled: the race detector makes sync.Pool drop a share of what is put back, so
// allocation counts of pooled paths mean nothing under it.
const raceEnabled = true
