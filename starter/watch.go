package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"golang.org/x/term"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/watch"
)

// exitInterrupted is the exit code after Ctrl-C stopped watching (128 + SIGINT,
// as shells report it): neither success nor the workflow's failure.
const exitInterrupted = 130

// interruptedError says that watching stopped while the workflow goes on, and how
// to watch it again.
type interruptedError struct{ id, resume string }

func (e interruptedError) Error() string {
	return fmt.Sprintf("stopped watching %s; it goes on. Watch it again with: %s", e.id, e.resume)
}

// watchInterval is how often the display asks the workflow for its progress.
const watchInterval = time.Second

// queryTimeout bounds one progress query: no worker answering must not freeze the display.
const queryTimeout = 3 * time.Second

// watched is a workflow to follow on a live display.
type watched struct {
	run    client.WorkflowRun
	noun   string // "rollout" or "bake", for messages
	resume string // the command that watches it again
	// frame turns the answer of the progress query into a frame.
	frame func(converter.EncodedValue) (watch.Frame, error)
	// result receives the workflow's result.
	result any
}

// follow shows t's progress on w until the workflow ends, and returns the
// workflow's error (nil when it succeeded). Ctrl-C (or SIGTERM, or ctx ending)
// stops watching and returns an interruptedError; the workflow goes on.
func follow(ctx context.Context, c client.Client, w io.Writer, t watched) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	isTerm, width := terminalOf(w)
	disp := watch.New(w, watch.Options{Terminal: isTerm, Width: width})
	if isTerm {
		fmt.Fprintf(w, "Watching %s (run %s). Ctrl-C stops watching; the %s goes on.\n", t.run.GetID(), t.run.GetRunID(), t.noun)
	}

	done := make(chan error, 1)
	go func() { done <- t.run.Get(ctx, t.result) }()

	shown, failures := false, 0
	show := func() {
		f, err := queryFrame(ctx, c, t)
		if err != nil {
			// Say why nothing shows when no worker answers; keep the last frame otherwise.
			if failures++; !shown && failures == 3 {
				_ = disp.Show(watch.Frame{Title: t.run.GetID(), Rows: []watch.Row{
					{Label: watch.LabelPhase, Value: "no answer to the progress query yet: is imago-worker running?"},
				}})
			}
			return
		}
		failures, shown = 0, true
		_ = disp.Show(f)
	}
	interrupted := func() error {
		if isTerm {
			fmt.Fprintln(w) // past the ^C the terminal echoed
		}
		return interruptedError{id: t.run.GetID(), resume: t.resume}
	}

	show()
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				return interrupted()
			}
			show() // the final phase
			return err
		case <-tick.C:
			show()
		case <-ctx.Done():
			return interrupted()
		}
	}
}

func queryFrame(ctx context.Context, c client.Client, t watched) (watch.Frame, error) {
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	val, err := c.QueryWorkflow(qctx, t.run.GetID(), t.run.GetRunID(), contract.QueryProgress)
	if err != nil {
		return watch.Frame{}, err
	}
	return t.frame(val)
}

// framesOf decodes the progress query's answer (a P) into a frame of the
// workflow id: watch.RolloutFrame, watch.BakeFrame, pipelineFrame, campaignFrame.
func framesOf[P any](id string, frame func(string, P) watch.Frame) func(converter.EncodedValue) (watch.Frame, error) {
	return func(val converter.EncodedValue) (watch.Frame, error) {
		var p P
		if err := val.Get(&p); err != nil {
			return watch.Frame{}, err
		}
		return frame(id, p), nil
	}
}

// terminalOf reports whether w is a terminal that can redraw in place, and its width.
func terminalOf(w io.Writer) (bool, int) {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" || !term.IsTerminal(int(f.Fd())) {
		return false, 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		width = 0
	}
	return true, width
}

// checkWatch refuses --watch with -o json: the live display is for people.
func checkWatch(out *output, watching bool) error {
	if watching && out.json() {
		return usageError{errors.New("--watch draws a live display for people and cannot be combined with -o json; use --wait -o json for the outcome as JSON")}
	}
	return nil
}
