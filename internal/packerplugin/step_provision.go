package packerplugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/imago/imago/internal/bake/runas"
)

// tailLines is how many of a failed command's last output lines its error holds.
const tailLines = 20

// StepProvision runs the provision commands, in order, with `/bin/sh -c` in the
// staging directory. Their environment is clean: Env plus the PassEnv names
// copied from the builder's own environment, nothing else of it. With a User
// they run as that user (see runas). Output is streamed line by line to the Ui.
// Each command runs in its own process group, which is killed when the command
// ends (so no background process outlives it) or the build is cancelled.
//
// Uses:
//
//	staging_dir string
//
// Cleanup has nothing to undo: what the commands made is inside the staging
// directory, which StepStage removes.
type StepProvision struct {
	Commands []string
	Env      map[string]string
	PassEnv  []string
	User     *runas.User
}

func (s *StepProvision) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	dir := state.Get("staging_dir").(string)
	env := s.environ(os.LookupEnv)
	for i, command := range s.Commands {
		ui.Say(fmt.Sprintf("Provisioning with command %d/%d: %s", i+1, len(s.Commands), command))
		if err := runCommand(ctx, dir, env, s.User, command, ui); err != nil {
			return halt(state, ui, fmt.Errorf("provision command %d/%d %q %w", i+1, len(s.Commands), command, err))
		}
	}
	return multistep.ActionContinue
}

func (s *StepProvision) Cleanup(multistep.StateBag) {}

// environ builds the commands' environment, sorted by name.
func (s *StepProvision) environ(lookup func(string) (string, bool)) []string {
	vars := map[string]string{}
	for _, name := range s.PassEnv {
		if v, ok := lookup(name); ok {
			vars[name] = v
		}
	}
	for name, v := range s.Env {
		vars[name] = v
	}
	env := make([]string, 0, len(vars))
	for name, v := range vars {
		env = append(env, name+"="+v)
	}
	sort.Strings(env)
	return env
}

// runCommand runs one command and streams its output to ui. Its error reads as
// the tail of a sentence starting with the command: "failed with exit code 3;
// its last output lines: ...".
func runCommand(ctx context.Context, dir string, env []string, user *runas.User, command string, ui packersdk.Ui) error {
	out := &outputLog{ui: ui}
	stdout, stderr := out.writer(), out.writer()

	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr // exec copies through pipes
	// Once the shell exited, output still held open by stray descendants that
	// escaped the process group is given up on after WaitDelay.
	cmd.WaitDelay = 2 * time.Second
	setProcessGroup(cmd)
	if err := user.Apply(cmd); err != nil {
		return fmt.Errorf("could not start: %w", err)
	}

	if err := cmd.Start(); err != nil {
		return fmt.Errorf("could not start: %w", user.StartError(err))
	}
	err := cmd.Wait()
	killProcessGroup(cmd) // leftovers, e.g. `server &`
	stdout.flush()
	stderr.flush()

	if ctx.Err() != nil {
		return fmt.Errorf("was cancelled%s", out.tail())
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success():
		return nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		return fmt.Errorf("failed with exit code %d%s", exitErr.ExitCode(), out.tail())
	case errors.As(err, &exitErr):
		return fmt.Errorf("failed: %s%s", exitErr.ProcessState, out.tail())
	default:
		return fmt.Errorf("failed: %w%s", err, out.tail())
	}
}

// outputLog shows a command's output lines on the Ui as they come, and keeps
// the last ones for the error message.
type outputLog struct {
	ui packersdk.Ui

	mu   sync.Mutex
	last []string
}

func (o *outputLog) line(l string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ui.Message(l)
	if len(o.last) == tailLines {
		copy(o.last, o.last[1:])
		o.last = o.last[:tailLines-1]
	}
	o.last = append(o.last, l)
}

func (o *outputLog) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.last) == 0 {
		return " and printed nothing"
	}
	return fmt.Sprintf("; its last output lines:\n    %s", strings.Join(o.last, "\n    "))
}

func (o *outputLog) writer() *lineWriter { return &lineWriter{emit: o.line} }

// maxLine bounds a line; longer ones are cut into several.
const maxLine = 64 << 10

// lineWriter splits what is written to it into lines.
type lineWriter struct {
	emit func(string)
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= maxLine {
				w.emit(string(w.buf[:maxLine]))
				w.buf = append(w.buf[:0], w.buf[maxLine:]...)
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.emit(strings.TrimSuffix(string(w.buf), "\r"))
		w.buf = w.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = w.buf[:0]
	}
}
