//go:build !linux

package runas

import (
	"fmt"
	"os/exec"
)

func (u *User) apply(*exec.Cmd) error {
	return fmt.Errorf("%s: running bakes as another user needs Linux (PID namespaces); unset %s", u, Env)
}
