//go:build linux

package bake

import (
	"os/exec"
	"syscall"
	"unsafe"
)

// waitAndKillGroup waits for the group leader to exit without reaping it
// (waitid WNOWAIT), calls exited, kills the rest of the group while the
// leader's pid still pins the group id, and then reaps the leader.
func waitAndKillGroup(cmd *exec.Cmd, pgid int, exited func()) error {
	const pPID = 1 // P_PID
	var siginfo [128]byte
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(cmd.Process.Pid),
			uintptr(unsafe.Pointer(&siginfo[0])), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			break
		}
	}
	exited()
	killGroup(pgid)
	return cmd.Wait()
}
