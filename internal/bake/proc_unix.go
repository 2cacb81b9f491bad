//go:build unix

package bake

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

const (
	// maxLine bounds one output line; the rest of a longer line is
	// dropped (but still read, so packer never blocks on us).
	maxLine = 1 << 20
	// pipeDrain is how long output is still read after the process group
	// is gone (a process that left the group may hold the pipes open).
	pipeDrain = 5 * time.Second
)

// runProcess runs packer with args in its own process group and collects its
// output. When ctx is done the group gets SIGINT, and SIGKILL after the
// grace period. Whatever happens, once packer has exited the rest of its
// process group is SIGKILLed and packer is reaped before runProcess returns. The
// error is non-nil only when packer could not be started.
func (r PackerRun) runProcess(ctx context.Context, args []string, onEvent func(Event)) (*output, error) {
	cmd := exec.Command(r.Packer, args...)
	cmd.Dir = r.Dir
	cmd.Env = r.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.User.Apply(cmd); err != nil {
		return nil, fmt.Errorf("bake: start packer: %w", err)
	}

	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("bake: %w", err)
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return nil, fmt.Errorf("bake: %w", err)
	}
	defer errR.Close()
	// *os.File outputs go straight to the child: cmd.Wait does not wait
	// for them, so a process that escapes the group cannot hang us.
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		return nil, fmt.Errorf("bake: start packer: %w", r.User.StartError(err))
	}
	pgid := cmd.Process.Pid

	out := newOutput()
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		readLines(outR, func(line string) { out.stdoutLine(line, onEvent) })
	}()
	go func() {
		defer readers.Done()
		readLines(errR, func(line string) { out.stderr.add(trimEOL(line)) })
	}()

	exited := make(chan struct{})
	signalled := make(chan struct{})
	go func() {
		defer close(signalled)
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		// Like Ctrl-C in a terminal: packer and its plugins cancel the
		// builds and clean up (terminate instances, delete temp keys).
		_ = syscall.Kill(-pgid, syscall.SIGINT)
		t := time.NewTimer(r.grace())
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}()

	waitErr := waitAndKillGroup(cmd, pgid, func() {
		close(exited)
		<-signalled
	})

	drained := make(chan struct{})
	go func() { readers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(pipeDrain):
		now := time.Now()
		_ = outR.SetReadDeadline(now)
		_ = errR.SetReadDeadline(now)
		<-drained
	}

	var exitErr *exec.ExitError
	switch {
	case waitErr == nil:
	case errors.As(waitErr, &exitErr):
		out.exitCode = exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			out.signal = ws.Signal().String()
		}
	default:
		return nil, fmt.Errorf("bake: wait for packer: %w", waitErr)
	}
	return out, nil
}

// killGroup SIGKILLs what is left of the process group. Only call it while
// the leader is not yet reaped, so the group id cannot have been reused.
func killGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// readLines calls fn for every line of r (with its "\n"), cutting lines at
// maxLine bytes, until EOF or a read error.
func readLines(r io.Reader, fn func(string)) {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if room := maxLine - len(buf); room > 0 {
			if len(chunk) > room {
				chunk = chunk[:room]
			}
			buf = append(buf, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(buf) > 0 {
			fn(string(buf))
			buf = buf[:0]
		}
		if err != nil {
			return
		}
	}
}

func trimEOL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
