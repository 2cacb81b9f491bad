//go:build unix && !linux

package bake

import "os/exec"

// waitAndKillGroup reaps the group leader, calls exited and then kills the
// rest of its group. (Without waitid WNOWAIT there is a tiny window in
// which the group id could be reused after the leader is reaped.)
func waitAndKillGroup(cmd *exec.Cmd, pgid int, exited func()) error {
	err := cmd.Wait()
	exited()
	killGroup(pgid)
	return err
}
