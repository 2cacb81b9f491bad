//go:build linux

package runas

import (
	"os/exec"
	"syscall"
)

func (u *User) apply(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// No supplementary groups (an empty list clears the worker's), and a PID
	// namespace: when the command's first process exits, the kernel kills the rest.
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{}}
	cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWPID
	return nil
}
