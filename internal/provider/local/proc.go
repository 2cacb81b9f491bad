package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"
)

// Environment markers of the processes the driver starts. With IMAGO_HOME they let
// a driver find its processes by scanning /proc, e.g. after a crash between
// starting a process and recording its pid.
const (
	envHome     = "IMAGO_HOME"
	envInstance = "IMAGO_INSTANCE_ID"
	envFleet    = "IMAGO_FLEET_ID"
	envRouter   = "IMAGO_ROUTER_KEY" // router.EnvKey
)

// procStat is what the driver needs from /proc/<pid>/stat.
type procStat struct {
	state     byte   // field 3: R, S, D, Z, X, ...
	pgrp      int    // field 5
	startTime uint64 // field 22, clock ticks after boot
}

func readStat(pid int) (procStat, error) {
	var st procStat
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return st, err
	}
	// The command name (field 2) is in parentheses and may hold spaces or ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return st, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return st, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	// fields[0] is field 3 (state), fields[2] field 5 (pgrp), fields[19] field 22.
	st.state = fields[0][0]
	if st.pgrp, err = strconv.Atoi(fields[2]); err != nil {
		return st, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	if st.startTime, err = strconv.ParseUint(fields[19], 10, 64); err != nil {
		return st, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// startTimeOf returns the start time of pid, 0 when it cannot be read.
func startTimeOf(pid int) uint64 {
	st, err := readStat(pid)
	if err != nil {
		return 0
	}
	return st.startTime
}

// alive reports whether pid is a live (not zombie) process that started at
// startTime, so a reused pid is never taken for the process we recorded.
func alive(pid int, startTime uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := readStat(pid)
	if err != nil || st.state == 'Z' || st.state == 'X' || st.state == 'x' {
		return false
	}
	return startTime == 0 || st.startTime == startTime
}

// liveness answers alive for many instances that share few processes (the
// instances of a sim fleet share its host's pid), reading each process once.
type liveness map[procRef]bool

func (l liveness) alive(pid int, startTime uint64) bool {
	ref := procRef{pid, startTime}
	up, ok := l[ref]
	if !ok {
		up = alive(pid, startTime)
		l[ref] = up
	}
	return up
}

// procEntry is a live process that carries this Home's markers.
type procEntry struct {
	pid       int
	pgrp      int
	startTime uint64
	env       map[string]string // IMAGO_* and PORT only
}

// scanProcs lists live processes whose environment has IMAGO_HOME=home and an
// instance or router marker. The calling process is never listed.
func scanProcs(home string) ([]procEntry, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	needle := []byte(envHome + "=" + home + "\x00")
	self := os.Getpid()
	var out []procEntry
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(data, needle) {
			continue
		}
		env := map[string]string{}
		for _, kv := range bytes.Split(data, []byte{0}) {
			k, v, ok := strings.Cut(string(kv), "=")
			if ok && (strings.HasPrefix(k, "IMAGO_") || k == "PORT") {
				env[k] = v
			}
		}
		if env[envHome] != home || (env[envInstance] == "" && env[envRouter] == "" && env[envSim] == "") {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.state == 'Z' || st.state == 'X' || st.state == 'x' {
			continue
		}
		out = append(out, procEntry{pid: pid, pgrp: st.pgrp, startTime: st.startTime, env: env})
	}
	return out, nil
}

// procRef names a process by pid and start time.
type procRef struct {
	pid       int
	startTime uint64
}

// signalProc signals the process group of p when p leads it (every process the
// driver starts leads its own session), p alone otherwise.
func signalProc(p procRef, sig syscall.Signal) {
	st, err := readStat(p.pid)
	if err != nil || (p.startTime != 0 && st.startTime != p.startTime) {
		return
	}
	if st.pgrp == p.pid {
		syscall.Kill(-p.pid, sig)
		return
	}
	syscall.Kill(p.pid, sig)
}

// stopProcs sends SIGTERM to procs, waits up to grace for them to exit, then
// sends SIGKILL and waits up to 5s more.
func stopProcs(ctx context.Context, procs []procRef, grace time.Duration) error {
	live := func() []procRef {
		var out []procRef
		for _, p := range procs {
			if alive(p.pid, p.startTime) {
				out = append(out, p)
			}
		}
		return out
	}
	procs = live()
	if len(procs) == 0 {
		return nil
	}
	for _, p := range procs {
		signalProc(p, syscall.SIGTERM)
	}
	if procs = waitGone(ctx, live, grace); len(procs) == 0 {
		return nil
	}
	for _, p := range procs {
		signalProc(p, syscall.SIGKILL)
	}
	if procs = waitGone(context.WithoutCancel(ctx), live, 5*time.Second); len(procs) == 0 {
		return nil
	}
	return fmt.Errorf("processes %v survived SIGKILL", procs)
}

// waitGone polls live until it is empty, ctx is done or d has passed, and returns
// what is still alive.
func waitGone(ctx context.Context, live func() []procRef, d time.Duration) []procRef {
	deadline := time.Now().Add(d)
	tick := 5 * time.Millisecond
	for {
		left := live()
		if len(left) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return left
		}
		time.Sleep(tick)
		if tick < 50*time.Millisecond {
			tick *= 2
		}
	}
}

// lockRetry is how often lockFile tries again while another holder has the lock.
const lockRetry = 10 * time.Millisecond

// lockFile takes an exclusive flock on path (gofrs/flock), trying again every
// lockRetry until ctx is done. The returned function releases it. Lock files
// are 0600 and never removed: removing a lock file someone waits on would let
// two holders in.
func lockFile(ctx context.Context, path string) (func(), error) {
	l := flock.New(path, flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o600))
	ok, err := l.TryLockContext(ctx, lockRetry)
	if err == nil && !ok {
		err = errors.New("not taken") // TryLockContext returns false only with an error
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { l.Unlock() }, nil
}
