// Package control is the gateway's pod-local control channel: HTTP over a unix socket that
// only processes inside the pod (the preStop hook's `gateway drain`, `gateway rebalance` run
// by kubectl exec) can reach. Starting a drain or a rebalance changes the gateway's state, so
// it is never served on a network listener.
package control

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// SocketMode is the control socket's file mode: connecting needs write permission on it, so
// only the gateway's own user (and root) can.
const SocketMode os.FileMode = 0o600

// Listener is the control socket. Close removes the socket file, unless another process has
// replaced it meanwhile.
type Listener struct {
	net.Listener
	path string
	info os.FileInfo // the file this listener created
}

// Listen binds the unix socket at path with mode SocketMode. The parent directory is created
// (mode 0700) when missing. An existing socket nobody answers on is stale (a killed gateway)
// and replaced; a live one, or anything that is not a socket, is an error.
//
// The socket is bound in a fresh private directory (mode 0700) beside path, given its mode
// there, then renamed into place: it is never reachable with the looser mode bind gives it.
func Listen(path string) (*Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating the control socket's directory: %w", err)
	}
	if err := checkStale(path); err != nil {
		return nil, err
	}
	// The name is kept short: unix socket paths hold at most 107 bytes (config.MaxControlPathBytes).
	private, err := os.MkdirTemp(dir, ".ctl")
	if err != nil {
		return nil, fmt.Errorf("while binding the control socket: %w", err)
	}
	defer os.RemoveAll(private)
	tmp := filepath.Join(private, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("while binding the control socket: %w", err)
	}
	// The file is renamed away: Close removes it under its final name (see Listener.Close).
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, SocketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("while setting the control socket's mode: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("while moving the control socket into place: %w", err)
	}
	info, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Listener{Listener: ln, path: path, info: info}, nil
}

// checkStale refuses to replace anything but a dead socket at path.
func checkStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("control socket %s: a %s is in the way; remove it or choose another listen.control", path, fi.Mode().Type())
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("control socket %s: another gateway serves it; give each gateway its own listen.control", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	return nil // stale: the rename replaces it
}

// Path is the socket's path.
func (l *Listener) Path() string { return l.path }

// Close stops listening and removes the socket file if it is still the one Listen created.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.info) {
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}
