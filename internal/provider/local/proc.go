package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"github.com/prometheus/procfs"
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
	fs, err := procFS()
	if err != nil {
		return procStat{}, err
	}
	p, err := fs.Proc(pid)
	if err != nil {
		return procStat{}, err
	}
	st, err := p.Stat()
	if err != nil || st.State == "" {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return procStat{state: st.State[0], pgrp: st.PGRP, startTime: st.Starttime}, nil
}

// procFS is /proc, read through github.com/prometheus/procfs.
var procFS = sync.OnceValues(procfs.NewDefaultFS)

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
	fs, err := procFS()
	if err != nil {
		return nil, err
	}
	procs, err := fs.AllProcs()
	if err != nil {
		return nil, err
	}
	needle := envHome + "=" + home
	self := os.Getpid()
	var out []procEntry
	for _, p := range procs {
		if p.PID == self {
			continue
		}
		environ, err := p.Environ()
		if err != nil || !slices.Contains(environ, needle) {
			continue
		}
		env := map[string]string{}
		for _, kv := range environ {
			k, v, ok := strings.Cut(kv, "=")
			if ok && (strings.HasPrefix(k, "IMAGO_") || k == "PORT") {
				env[k] = v
			}
		}
		if env[envHome] != home || (env[envInstance] == "" && env[envRouter] == "" && env[envSim] == "") {
			continue
		}
		st, err := readStat(p.PID)
		if err != nil || st.state == 'Z' || st.state == 'X' || st.state == 'x' {
			continue
		}
		out = append(out, procEntry{pid: p.PID, pgrp: st.pgrp, startTime: st.startTime, env: env})
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
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var left []procRef
	poll(ctx, 5*time.Millisecond, func() (bool, error) {
		left = live()
		return len(left) == 0, nil
	})
	return left
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
