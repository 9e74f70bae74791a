//go:build !linux

package gwproc

import "os/exec"

// dieWithParent has no portable equivalent outside Linux; the cleanups kill the children.
func dieWithParent(*exec.Cmd) {}
