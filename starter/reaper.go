package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/schedules"
)

func newReaperCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reaper",
		Short: "Find and terminate leaked fleets",
		Long: `The reaper lists the provider's fleets and finds the leaked ones: no route sends
them traffic, no running rollout, bake or pipeline of their service may own them,
and they are older than the grace period. By default it only reports them (a dry
run); --apply terminates them.`,
		Example: `  imago reaper run
  imago reaper run --apply --grace 30m
  imago reaper schedule --every 1h --apply`,
	}
	cmd.AddCommand(newReaperRunCmd(), newReaperScheduleCmd())
	return cmd
}

func newReaperRunCmd() *cobra.Command {
	var apply bool
	var grace time.Duration
	cmd := &cobra.Command{
		Use:     "run [--apply] [--grace DURATION]",
		Short:   "Sweep once and print what was (or would be) terminated",
		Example: "  imago reaper run\n  imago reaper run --apply --grace 30m -o json",
		Args:    args(cobra.NoArgs),
	}
	cmd.Flags().BoolVar(&apply, "apply", false, "terminate the leaked fleets (default: only report them)")
	cmd.Flags().DurationVar(&grace, "grace", contract.DefaultReaperGrace, "only fleets older than this count as leaked")
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if grace <= 0 {
			return usageError{fmt.Errorf("--grace must be positive, e.g. 1h")}
		}
		return withClient(cmd, func(c client.Client) error {
			run, err := c.ExecuteWorkflow(cmd.Context(), client.StartWorkflowOptions{
				ID: "reaper/" + startedBy(), TaskQueue: contract.TaskQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
				StaticSummary:            fmt.Sprintf("reaper · apply=%t · grace %s", apply, grace),
			}, contract.WorkflowReaper, contract.ReaperInput{Apply: apply, Grace: grace})
			if err != nil {
				return fmt.Errorf("start the reaper: %w", err)
			}
			var res contract.ReaperResult
			if err := run.Get(cmd.Context(), &res); err != nil {
				return fmt.Errorf("reaper: %w", err)
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			tw := table(w)
			fmt.Fprintln(tw, "FLEET\tSERVICE\tENVIRONMENT\tIMAGE\tINSTANCES\tCREATED")
			for _, o := range res.Found.Orphans {
				id := o.FleetID
				if o.Role != "" {
					id += " (" + o.Role + ")" // a canary's baseline
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", id, o.Service, o.Environment, o.ImageID, o.Instances, o.Created.UTC().Format(time.RFC3339))
			}
			tw.Flush()
			fmt.Fprintln(w, res.Summary)
			return nil
		})
	}
	return cmd
}

func newReaperScheduleCmd() *cobra.Command {
	var o schedules.ReaperOptions
	cmd := &cobra.Command{
		Use:     "schedule [--every DURATION] [--apply] [--grace DURATION]",
		Short:   "Run the reaper on a schedule (see it with imago schedule describe imago-reaper)",
		Example: "  imago reaper schedule --every 1h\n  imago reaper schedule --every 6h --apply --grace 2h",
		Args:    args(cobra.NoArgs),
	}
	cmd.Flags().DurationVar(&o.Every, "every", time.Hour, "time between sweeps")
	cmd.Flags().BoolVar(&o.Apply, "apply", false, "terminate the leaked fleets (default: only report them)")
	cmd.Flags().DurationVar(&o.Grace, "grace", contract.DefaultReaperGrace, "only fleets older than this count as leaked")
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withClient(cmd, func(c client.Client) error {
			if err := schedules.CreateReaper(cmd.Context(), c, o); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created schedule %s: a sweep every %s (apply=%t, grace %s)\n", schedules.ReaperScheduleID, o.Every, o.Apply, o.Grace)
			return nil
		})
	}
	return cmd
}
