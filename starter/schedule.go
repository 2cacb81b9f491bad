package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/schedules"
	"github.com/imago/imago/internal/spec"
)

func newScheduleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Rebuild golden images on a schedule, and roll them out",
		Long: `Schedules run on Temporal Schedules. Each tick starts a pipeline: a bake, then
(with --then) rollouts to environments in order. A tick whose inputs did not
change (same template, variables, files and base image, and the image already
live everywhere) is skipped, and describe shows why.`,
		Example: `  imago schedule create nightly --bake examples/hello/bake.yaml --cron "0 3 * * *" --timezone Europe/Berlin
  imago schedule create hello --bake examples/hello/bake.yaml --every 1h --then examples/hello/pipeline.yaml
  imago schedule describe nightly`,
	}
	cmd.AddCommand(newScheduleCreateCmd(), newScheduleListCmd(), newScheduleDescribeCmd(),
		newSchedulePauseCmd(true), newSchedulePauseCmd(false), newScheduleTriggerCmd(),
		newScheduleBackfillCmd(), newScheduleDeleteCmd())
	return cmd
}

// loadSchedulePipeline builds the pipeline a schedule runs: the bake of --bake,
// and the stages of --then (whose own bake, if any, --bake overrides).
func loadSchedulePipeline(name, bakeFile, thenFile string) (spec.Pipeline, error) {
	var p spec.Pipeline
	if thenFile != "" {
		var err error
		if p, err = spec.ReadPipeline(thenFile); err != nil {
			return p, usageError{err}
		}
	}
	if bakeFile != "" {
		abs, err := filepath.Abs(bakeFile)
		if err != nil {
			return p, usageError{err}
		}
		p.BakeFile = abs
	}
	if p.BakeFile == "" {
		return p, usageError{fmt.Errorf("--bake FILE is required: the bake spec the schedule rebuilds, e.g. examples/hello/bake.yaml")}
	}
	p.Name = name
	if err := p.Load(); err != nil {
		where := "--then " + thenFile
		if thenFile == "" {
			where = "--bake " + bakeFile
		}
		return p, fmt.Errorf("%s: %w", where, err)
	}
	return p, nil
}

func newScheduleCreateCmd() *cobra.Command {
	var o schedules.CreateOptions
	var bakeFile, thenFile string
	cmd := &cobra.Command{
		Use:   "create NAME --bake FILE (--cron EXPR | --every DURATION) [--then PIPELINE_FILE]",
		Short: "Create a schedule that rebuilds an image (and rolls it out with --then)",
		Long: `Creates a schedule that bakes --bake on every tick of --cron (in --timezone,
default UTC) or --every. With --then, each new image is rolled out through the
pipeline's stages in order (e.g. staging, then prod behind an approval gate);
a stage that fails stops the pipeline before the next environment.

By default a tick rebuilds only when something changed — the base image moved,
or the template, variables or files changed — and otherwise is skipped with its
reason; --always builds and rolls out on every tick. --overlap says what happens
when a tick comes while the previous run still runs: skip (default), buffer-one,
cancel-other, buffer-all or allow-all.

A pipeline file with onBaseChange: true also runs whenever its bake's base
channel moves (a patched base image).`,
		Example: `  imago schedule create nightly --bake examples/hello/bake.yaml --cron "0 3 * * *" --timezone Europe/Berlin
  imago schedule create hello --bake examples/hello/bake.yaml --every 1h --then examples/hello/pipeline.yaml --overlap buffer-one`,
		Args: args(cobra.ExactArgs(1)),
	}
	cmd.Flags().StringVar(&bakeFile, "bake", "", "the bake spec to rebuild (required unless the --then pipeline names one)")
	cmd.Flags().StringVar(&o.Cron, "cron", "", `cron expression: "0 3 * * *", @daily, @hourly`)
	cmd.Flags().DurationVar(&o.Every, "every", 0, "interval between ticks instead of --cron, e.g. 24h")
	cmd.Flags().StringVar(&o.Timezone, "timezone", "", "IANA time zone of --cron, e.g. Europe/Berlin (default UTC)")
	cmd.Flags().StringVar(&o.Overlap, "overlap", "skip", "when a tick finds the last run still running: "+strings.Join(schedules.OverlapNames(), ", "))
	cmd.Flags().StringVar(&thenFile, "then", "", "a pipeline file whose stages roll each new image out")
	cmd.Flags().BoolVar(&o.Always, "always", false, "build and roll out on every tick, even when nothing changed")
	cmd.Flags().BoolVar(&o.Paused, "paused", false, "create the schedule paused")
	cmd.Flags().StringVar(&o.Note, "note", "", "a note shown by describe")
	_ = cmd.RegisterFlagCompletionFunc("overlap", cobra.FixedCompletions(schedules.OverlapNames(), cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		o.Name = a[0]
		p, err := loadSchedulePipeline(o.Name, bakeFile, thenFile)
		if err != nil {
			return err
		}
		o.Pipeline, o.StartedBy = p, startedBy()
		if err := o.Validate(); err != nil {
			return err
		}
		if err := fenceBake(p.BakeSpec()); err != nil {
			return err
		}
		return withClient(cmd, func(c client.Client) error {
			if err := schedules.Create(cmd.Context(), c, o); err != nil {
				return err
			}
			s, err := schedules.Describe(cmd.Context(), c, o.Name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created schedule %s (%s); next run %s\n", o.Name, s.Spec, nextRun(s))
			return nil
		})
	}
	return cmd
}

// fenceBake refuses, with IMAGO_BAKE_ROOTS set, a bake reading outside it: the
// workers with the same setting would refuse every tick.
func fenceBake(b *spec.Bake) error {
	roots, err := spec.ParseBakeRoots(os.Getenv(spec.BakeRootsEnv))
	if err != nil {
		return usageError{err}
	}
	if b == nil || roots.IsZero() {
		return nil
	}
	if es := roots.Check(b); len(es) > 0 {
		return es.Under("bake")
	}
	return nil
}

func nextRun(s schedules.Schedule) string {
	if s.Paused {
		return "none: paused"
	}
	if len(s.NextRuns) == 0 {
		return "none"
	}
	return s.NextRuns[0].UTC().Format(time.RFC3339)
}

func newScheduleListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List imago's schedules",
		Example: "  imago schedule list\n  imago schedule list -o json",
		Args:    args(cobra.NoArgs),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withClient(cmd, func(c client.Client) error {
			list, err := schedules.List(cmd.Context(), c)
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), nonNil(list))
			}
			if len(list) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no schedules; create one with: imago schedule create NAME --bake FILE --cron EXPR")
				return nil
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tSERVICE\tSPEC\tNEXT RUN\tNOTE")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Service, s.Spec, nextRun(s), s.Note)
			}
			return tw.Flush()
		})
	}
	return cmd
}

func newScheduleDescribeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a schedule: its next runs and its recent runs with their outcome",
		Long: `Shows the schedule's spec, overlap policy, pause state and note, its next runs,
and its recent runs, newest first, each with its outcome: what it built and where
it rolled out, why it was skipped (inputs unchanged), or why it failed.`,
		Example: "  imago schedule describe nightly\n  imago schedule describe nightly -o json",
		Args:    args(cobra.ExactArgs(1)),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withClient(cmd, func(c client.Client) error {
			s, err := schedules.Describe(cmd.Context(), c, a[0])
			if err != nil {
				return err
			}
			if out.json() {
				s.NextRuns, s.Recent = nonNil(s.NextRuns), nonNil(s.Recent)
				return writeJSON(cmd.OutOrStdout(), s)
			}
			writeSchedule(cmd.OutOrStdout(), s)
			return nil
		})
	}
	return cmd
}

func writeSchedule(w io.Writer, s schedules.Schedule) {
	state := "active"
	if s.Paused {
		state = "paused"
	}
	fmt.Fprintf(w, "Schedule:   %s\nService:    %s\nSpec:       %s\nOverlap:    %s\nState:      %s\n", s.Name, s.Service, s.Spec, s.Overlap, state)
	if s.Note != "" {
		fmt.Fprintf(w, "Note:       %s\n", s.Note)
	}
	if s.WatchBase != "" {
		fmt.Fprintf(w, "Base:       runs when %s moves\n", s.WatchBase)
	}
	fmt.Fprintf(w, "Runs:       %d started, %d skipped for overlap\n", s.Actions, s.Skipped)
	fmt.Fprintln(w, "Next runs:")
	if len(s.NextRuns) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, t := range s.NextRuns {
		fmt.Fprintf(w, "  %s\n", t.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w, "Recent runs:")
	if len(s.Recent) == 0 {
		fmt.Fprintln(w, "  none yet")
	}
	tw := table(w)
	for _, r := range s.Recent {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.ScheduledAt.UTC().Format(time.RFC3339), r.WorkflowID, r.Status, r.Outcome)
	}
	tw.Flush()
}

func newSchedulePauseCmd(pause bool) *cobra.Command {
	verb, short := "unpause", "Resume a paused schedule"
	if pause {
		verb, short = "pause", "Pause a schedule (runs already started go on)"
	}
	var note string
	cmd := &cobra.Command{
		Use:     verb + " NAME [--note TEXT]",
		Short:   short,
		Example: fmt.Sprintf("  imago schedule %s nightly --note \"change freeze until Monday\"", verb),
		Args:    args(cobra.ExactArgs(1)),
	}
	cmd.Flags().StringVar(&note, "note", "", "why; shown by describe")
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withClient(cmd, func(c client.Client) error {
			n := note
			if n == "" {
				n = verb + "d by " + startedBy()
			}
			var err error
			if pause {
				err = schedules.Pause(cmd.Context(), c, a[0], n)
			} else {
				err = schedules.Unpause(cmd.Context(), c, a[0], n)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schedule %s %sd: %s\n", a[0], verb, n)
			return nil
		})
	}
	return cmd
}

func newScheduleTriggerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "trigger NAME",
		Short:   "Run a schedule's pipeline now (under its overlap policy)",
		Example: "  imago schedule trigger nightly\n  imago pipeline status nightly --watch",
		Args:    args(cobra.ExactArgs(1)),
	}
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withClient(cmd, func(c client.Client) error {
			if err := schedules.Trigger(cmd.Context(), c, a[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "triggered schedule %s; watch it with: imago pipeline status %s --watch\n", a[0], a[0])
			return nil
		})
	}
	return cmd
}

func newScheduleBackfillCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backfill NAME FROM TO",
		Short: "Run the ticks a schedule would have run between FROM and TO",
		Long: `Runs the actions the schedule would have started between FROM and TO
(RFC 3339 times), under its overlap policy — e.g. the nightly rebuilds missed
while imago was down.`,
		Example: "  imago schedule backfill nightly 2026-11-20T00:00:00Z 2026-11-23T00:00:00Z",
		Args:    args(cobra.ExactArgs(3)),
	}
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		from, err := time.Parse(time.RFC3339, a[1])
		if err != nil {
			return usageError{fmt.Errorf("FROM %q: want an RFC 3339 time such as 2026-11-20T00:00:00Z", a[1])}
		}
		to, err := time.Parse(time.RFC3339, a[2])
		if err != nil {
			return usageError{fmt.Errorf("TO %q: want an RFC 3339 time such as 2026-11-23T00:00:00Z", a[2])}
		}
		return withClient(cmd, func(c client.Client) error {
			if err := schedules.Backfill(cmd.Context(), c, a[0], from, to); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backfilling schedule %s from %s to %s\n", a[0], a[1], a[2])
			return nil
		})
	}
	return cmd
}

func newScheduleDeleteCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a schedule (runs it started go on)",
		Example: "  imago schedule delete nightly",
		Args:    args(cobra.ExactArgs(1)),
	}
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withClient(cmd, func(c client.Client) error {
			if err := schedules.Delete(cmd.Context(), c, a[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted schedule %s\n", a[0])
			return nil
		})
	}
	return cmd
}
