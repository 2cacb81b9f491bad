package local

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestReadStatSeesAProcessGroupLeaderUntilItIsReaped: what the driver reads
// from /proc (through procfs) for a process it starts: its own process group,
// a start time that names it, and no longer alive once it exited.
func TestReadStatSeesAProcessGroupLeaderUntilItIsReaped(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	st, err := readStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if st.pgrp != pid {
		t.Fatalf("pgrp = %d, want %d (the child leads its group)", st.pgrp, pid)
	}
	if st.startTime == 0 || st.startTime != startTimeOf(pid) {
		t.Fatalf("start time %d, startTimeOf %d: want the same non-zero value", st.startTime, startTimeOf(pid))
	}
	if self := startTimeOf(os.Getpid()); self == 0 || self > st.startTime {
		t.Fatalf("this process started at %d, the child at %d: want 0 < self <= child", self, st.startTime)
	}
	if !alive(pid, st.startTime) || alive(pid, st.startTime+1) {
		t.Fatal("alive: want true for the recorded start time and false for another (a reused pid)")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if alive(pid, st.startTime) {
		t.Fatal("alive after the child was killed and reaped")
	}
	if _, err := readStat(-1); err == nil {
		t.Fatal("readStat(-1) succeeded")
	}
}
