// Package repo locates the repository and runs its hack/ scripts, so that test helpers can
// fetch or build the real components they need when the Makefile has not done it already.
package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

const modulePath = "github.com/tcpgateway/tcpgateway"

var (
	rootOnce sync.Once
	root     string
	rootErr  error
)

// Root returns the repository's top directory: the nearest ancestor of the working directory
// whose go.mod declares this project's module.
func Root() (string, error) {
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
				bytes.HasPrefix(data, []byte("module "+modulePath+"\n")) {
				root = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = errors.New("repo: no go.mod for " + modulePath + " above the working directory")
				return
			}
			dir = parent
		}
	})
	return root, rootErr
}

// Script runs hack/<name> with args and extra environment (KEY=VALUE) and returns its trimmed
// standard output. The error carries the script's standard error, which explains failures.
func Script(ctx context.Context, env []string, name string, args ...string) (string, error) {
	top, err := Root()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(top, "hack", name)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}
