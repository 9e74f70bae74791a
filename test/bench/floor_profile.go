//go:build bench

package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// floorProfileStart is how long a CPU profile is given to start before the broadcast it
// covers: net/http/pprof starts profiling when its handler runs and tells nothing until the
// profile ends, so there is no event to wait for.
const floorProfileStart = 200 * time.Millisecond

// floorProfile, with TCPGW_FLOOR_PROFILE=<dir>, takes a CPU profile of a server (pprof: its
// /debug/pprof base URL) across one single broadcast and saves it as <dir>/<name>.pprof;
// `go tool pprof <dir>/gateway-*.pprof` merges a run's. It returns the function that waits
// for the profile (call it once the broadcast was measured). Without the variable it does
// nothing. The profiler's own cost (a signal 100 times a second) is in the CPU measured
// meanwhile: runs with profiles are for finding where the time goes, not for figures.
func floorProfile(ctx context.Context, pprof, name string, seconds int) (wait func() error) {
	dir := os.Getenv("TCPGW_FLOOR_PROFILE")
	if dir == "" || pprof == "" {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		done <- saveProfile(ctx, fmt.Sprintf("%s/profile?seconds=%d", pprof, seconds), filepath.Join(dir, name+".pprof"))
	}()
	select {
	case <-time.After(floorProfileStart):
	case err := <-done:
		return func() error { return err }
	}
	return func() error { return <-done }
}

func saveProfile(ctx context.Context, url, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
