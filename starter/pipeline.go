package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/pipelines"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/internal/watch"
)

func newPipelineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Bake an image and roll it through environments in order",
		Long: `A pipeline bakes an image (or takes an existing one) and rolls it out to each
stage's environment in order, e.g. staging then prod. Each rollout is a workflow
of its own (imago rollout status SERVICE -e ENV); a failed stage stops the
pipeline before the next environment; a stage with an approval gate waits for
imago pipeline approve. Schedules run pipelines on a cron (imago schedule).`,
		Example: `  imago pipeline start -f examples/hello/pipeline.yaml --watch
  imago pipeline approve hello --reason "staging looks good"`,
	}
	cmd.AddCommand(newPipelineStartCmd(), newPipelineStatusCmd(),
		newDecideCmd("pipeline", "hello", pipelines.Decide, contract.UpdateApprove, "Approve the stage a pipeline waits for", "staging looks good"),
		newDecideCmd("pipeline", "hello", pipelines.Decide, contract.UpdateAbort, "Stop a pipeline at its gate or before its next stage", "change freeze"))
	return cmd
}

func newPipelineStartCmd() *cobra.Command {
	var file string
	var always, wait, watching bool
	cmd := &cobra.Command{
		Use:   "start -f FILE [--always] [--wait | --watch]",
		Short: "Start a pipeline by hand",
		Long: `Starts the pipeline in FILE: its bake, then each stage's rollout in order. When
the bake finds its inputs unchanged and the image is already live in every
stage, the pipeline skips and says so; --always builds and rolls out anyway.

With --wait or --watch it exits 0 when the pipeline succeeded (or skipped) and 1
when it failed, with the reason.`,
		Example: `  imago pipeline start -f examples/hello/pipeline.yaml --watch
  imago pipeline start -f examples/hello/pipeline.yaml --always --wait`,
		Args: args(cobra.NoArgs),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the pipeline spec (YAML)")
	cmd.Flags().BoolVar(&always, "always", false, "build and roll out even when nothing changed")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the pipeline to end")
	cmd.Flags().BoolVar(&watching, "watch", false, "show the pipeline's progress live until it ends")
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if err := checkSpecFlags(file, "pipeline", "examples/hello/pipeline.yaml"); err != nil {
			return err
		}
		p, err := spec.LoadPipeline(file)
		if err != nil {
			if spec.IsInvalid(err) {
				return err
			}
			return usageError{err}
		}
		return withClient(cmd, func(c client.Client) error {
			run, err := pipelines.Start(cmd.Context(), c, p, always, startedBy())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "started %s (run %s)\n", run.GetID(), run.GetRunID())
			var res contract.PipelineResult
			switch {
			case watching:
				err = follow(cmd.Context(), c, w, pipelineWatch(run, p.Name, &res))
			case wait:
				err = run.Get(cmd.Context(), &res)
			default:
				fmt.Fprintf(w, "watch it with: imago pipeline status %s --watch\n", p.Name)
				return nil
			}
			if err != nil {
				return pipelineErr(p.Name, err)
			}
			fmt.Fprintln(w, res.Reason)
			return nil
		})
	}
	return cmd
}

func pipelineWatch(run client.WorkflowRun, name string, res *contract.PipelineResult) watched {
	return watched{
		run: run, noun: "pipeline", resume: "imago pipeline status " + name + " --watch", result: res,
		frame: framesOf(run.GetID(), pipelineFrame),
	}
}

// pipelineFrame is one look at a pipeline: phase, image, each stage's state.
func pipelineFrame(id string, p contract.PipelineProgress) watch.Frame {
	f := watch.Frame{Title: id, Started: p.StartedAt, Ended: pipelineEnded(p.Phase)}
	stages := make([]string, len(p.Stages))
	for i, st := range p.Stages {
		stages[i] = st.Environment + ": " + string(st.State)
	}
	last := ""
	if n := len(p.Events); n > 0 {
		last = p.Events[n-1].Message
	}
	f.Rows = []watch.Row{
		{Label: watch.LabelPhase, Value: p.Phase.String()},
		{Label: watch.LabelImage, Value: p.ImageID},
		{Label: "Stages", Value: strings.Join(stages, " → ")},
		{Label: watch.LabelLast, Value: last},
	}
	if p.Error != "" {
		f.Rows = append(f.Rows, watch.Row{Label: watch.LabelError, Value: p.Error})
	}
	return f
}

func pipelineEnded(phase contract.Phase) bool {
	switch phase {
	case contract.PhaseSucceeded, contract.PhaseFailed, contract.PhaseAborted, contract.PhaseSkipped, contract.PhaseCanceled:
		return true
	}
	return false
}

func newPipelineStatusCmd() *cobra.Command {
	var watching bool
	cmd := &cobra.Command{
		Use:   "status NAME [--watch]",
		Short: "Show the latest run of a pipeline (by hand or by its schedule)",
		Example: `  imago pipeline status hello
  imago pipeline status hello --watch
  imago pipeline status hello -o json`,
		Args: args(cobra.ExactArgs(1)),
	}
	cmd.Flags().BoolVar(&watching, "watch", false, "show the pipeline's progress live until it ends")
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if err := checkWatch(out, watching); err != nil {
			return err
		}
		return withClient(cmd, func(c client.Client) error {
			r, err := pipelines.Latest(cmd.Context(), c, a[0])
			if err != nil {
				return err
			}
			if watching {
				var res contract.PipelineResult
				err := follow(cmd.Context(), c, cmd.OutOrStdout(), pipelineWatch(c.GetWorkflow(cmd.Context(), r.WorkflowID, r.RunID), a[0], &res))
				if err != nil {
					return pipelineErr(a[0], err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), res.Reason)
				return nil
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			writePipeline(cmd.OutOrStdout(), r)
			return nil
		})
	}
	return cmd
}

func writePipeline(w io.Writer, r pipelines.Run) {
	p := r.Progress
	fmt.Fprintf(w, "Pipeline:  %s\nRun:       %s (%s)\nStatus:    %s\nPhase:     %s\nImage:     %s\nTrigger:   %s\n",
		p.Name, r.WorkflowID, r.RunID, r.Status, p.Phase, p.ImageID, p.Trigger)
	if p.Error != "" {
		fmt.Fprintf(w, "Error:     %s\n", p.Error)
	}
	fmt.Fprintln(w, "Stages:")
	tw := table(w)
	for _, st := range p.Stages {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", st.Environment, st.State, st.RolloutID, st.Error)
	}
	tw.Flush()
}

// newDecideCmd is `imago NOUN UPDATE NAME [--reason TEXT]` (a pipeline's or a
// campaign's approve, abort, resume): decide sends the update to the latest run.
func newDecideCmd(noun, sample string, decide func(ctx context.Context, c client.Client, name, update, by, reason string) error,
	update, short, example string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     update + " NAME [--reason TEXT]",
		Short:   short,
		Example: fmt.Sprintf("  imago %s %s %s --reason %q", noun, update, sample, example),
		Args:    args(cobra.ExactArgs(1)),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why; recorded in the "+noun+"'s progress")
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withClient(cmd, func(c client.Client) error {
			if err := decide(cmd.Context(), c, a[0], update, startedBy(), reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s accepted\n", noun, a[0], update)
			return nil
		})
	}
	return cmd
}

func pipelineErr(name string, err error) error { return workflowErr("pipeline", name, err) }
