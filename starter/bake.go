package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/bakes"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/internal/watch"
)

func newBakeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bake", Short: "Bake images"}
	cmd.AddCommand(newBakeStartCmd(), newBakeStatusCmd())
	return cmd
}

// loadBake reads and validates a bake spec; any problem is bad input.
func loadBake(path string) (spec.Bake, error) {
	b, err := spec.LoadBake(path)
	if err != nil && !spec.IsInvalid(err) {
		return b, usageError{err}
	}
	if err := b.Normalize(); err != nil {
		return b, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

func newBakeStartCmd() *cobra.Command {
	var file string
	var force, wait, watching bool
	cmd := &cobra.Command{
		Use:   "start -f FILE [--force] [--wait | --watch]",
		Short: "Bake an image from a bake spec",
		Long: `Computes the bake's input digest; when the catalog already has an image built
from the same inputs it returns that image without building (unless --force).
Otherwise it builds, boots one instance to test the image, publishes it and moves
the spec's channel (default latest) to it.

With --wait it waits for the bake; with --watch it shows its phase, inputs and
image on a live display (redrawn in place on a terminal, one line per change
otherwise). Both exit 0 when the bake succeeded and 1 when it failed, with the
reason. Ctrl-C stops watching (exit 130); the bake goes on.`,
		Example: `  imago bake start -f examples/hello/bake.yaml --watch
  imago bake start -f examples/hello/bake.yaml --force --wait -o json`,
		Args: args(cobra.NoArgs),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if err := checkSpecFlags(file, "bake", "examples/hello/bake.yaml"); err != nil {
			return err
		}
		if err := checkWatch(out, watching); err != nil {
			return err
		}
		b, err := loadBake(file)
		if err != nil {
			return err
		}
		b.Force = b.Force || force
		return withClient(cmd, func(c client.Client) error {
			ctx := cmd.Context()
			run, err := bakes.Start(ctx, c, b, startedBy())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case watching:
				fmt.Fprintf(w, "started %s (run %s)\n", run.GetID(), run.GetRunID())
				return watchBake(ctx, c, run, w, b.Service, b.Channel)
			case wait:
				var res contract.BakeResult
				return bakeOutcome(w, res, run.Get(ctx, &res), out.json())
			}
			if out.json() {
				return writeJSON(w, map[string]string{"workflowId": run.GetID(), "runId": run.GetRunID()})
			}
			fmt.Fprintf(w, "started %s (run %s)\n", run.GetID(), run.GetRunID())
			fmt.Fprintf(w, "follow it with: %s\n", bakeWatchCommand(b.Service, b.Channel))
			return nil
		})
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "bake spec (YAML)")
	cmd.Flags().BoolVar(&force, "force", false, "build even when an image with the same inputs exists")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the bake; exit 0 when it succeeded, 1 when it failed")
	cmd.Flags().BoolVar(&watching, "watch", false, "follow the bake on a live display; exit 0 when it succeeded, 1 when it failed")
	completeSpecFile(cmd)
	return cmd
}

func bakeWatchCommand(service, channel string) string {
	return fmt.Sprintf("imago bake status %s --channel %s --watch", service, channel)
}

// watchBake follows run on a live display, then prints its outcome as --wait does.
func watchBake(ctx context.Context, c client.Client, run client.WorkflowRun, w io.Writer, service, channel string) error {
	var res contract.BakeResult
	err := follow(ctx, c, w, watched{
		run:    run,
		noun:   "bake",
		resume: bakeWatchCommand(service, channel),
		frame:  framesOf(run.GetID(), watch.BakeFrame),
		result: &res,
	})
	var stopped interruptedError
	if errors.As(err, &stopped) {
		return err
	}
	return bakeOutcome(w, res, err, false)
}

// bakeOutcome prints how a bake ended and returns its failure.
func bakeOutcome(w io.Writer, res contract.BakeResult, err error, asJSON bool) error {
	if err != nil {
		return fmt.Errorf("%s", rollouts.Reason(err))
	}
	if asJSON {
		return writeJSON(w, res)
	}
	how := "built and tested"
	if res.Cached {
		how = "found in the cache (same inputs)"
	} else if !res.Tested {
		how = "built"
	}
	fmt.Fprintf(w, "%s %s; channel %s → %s\n", res.ImageID, how, res.Channel, res.ImageID)
	return nil
}

// bakeStatus is what `imago bake status -o json` prints.
type bakeStatus = bakes.State

func newBakeStatusCmd() *cobra.Command {
	var channel string
	var watching bool
	cmd := &cobra.Command{
		Use:   "status SERVICE [--channel C] [--watch]",
		Short: "Show the latest bake of a service's channel",
		Long: `Shows the latest bake of SERVICE for a channel (default latest): status, phase,
input digest, image, error, and its latest events.

With --watch it follows the bake on a live display until it ends and exits 0 when
the bake succeeded, 1 when it failed. Ctrl-C stops watching (exit 130); the bake
goes on.`,
		Example: `  imago bake status hello
  imago bake status hello --channel stable --watch
  imago bake status hello -o json`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: completeServiceArg,
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if err := checkWatch(out, watching); err != nil {
			return err
		}
		service := a[0]
		return withClient(cmd, func(c client.Client) error {
			ctx := cmd.Context()
			st, err := bakes.Get(ctx, c, service, channel)
			var nf *bakes.NotFoundError
			if errors.As(err, &nf) {
				return fmt.Errorf("%w; start one with: imago bake start -f FILE (a bake spec with service: %s, channel: %s)", err, service, channel)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if watching {
				return watchBake(ctx, c, c.GetWorkflow(ctx, st.WorkflowID, st.RunID), w, service, channel)
			}
			if out.json() {
				return writeJSON(w, st)
			}
			tw := table(w)
			fmt.Fprintf(tw, "Bake:\t%s (run %s)\n", st.WorkflowID, st.RunID)
			fmt.Fprintf(tw, "Status:\t%s\n", st.Status)
			if p := st.Progress; p != nil {
				fmt.Fprintf(tw, "Phase:\t%s\n", p.Phase)
				if p.InputDigest != "" {
					fmt.Fprintf(tw, "Input digest:\t%s\n", p.InputDigest)
				}
				if p.ImageID != "" {
					img := p.ImageID
					if p.Cached {
						img += " (cached: built before from the same inputs)"
					}
					fmt.Fprintf(tw, "Image:\t%s\n", img)
				}
				if p.LastLine != "" {
					fmt.Fprintf(tw, "Output:\t%s\n", p.LastLine)
				}
				if p.Error != "" {
					fmt.Fprintf(tw, "Error:\t%s\n", p.Error)
				}
			}
			fmt.Fprintf(tw, "Started:\t%s\n", st.Started.Local().Format(time.DateTime))
			if st.Closed != nil {
				fmt.Fprintf(tw, "Closed:\t%s\n", st.Closed.Local().Format(time.DateTime))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if st.Progress != nil {
				printEvents(w, st.Progress.Events)
			}
			return nil
		})
	}
	cmd.Flags().StringVar(&channel, "channel", "latest", "the channel the bake moves")
	cmd.Flags().BoolVar(&watching, "watch", false, "follow the bake on a live display until it ends; exit 0 when it succeeded, 1 when it failed")
	_ = cmd.RegisterFlagCompletionFunc("channel", completeChannels)
	return cmd
}
