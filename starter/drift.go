package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/drift"
	"github.com/imago/imago/internal/schedules"
)

func newDriftCmd() *cobra.Command {
	var in contract.DriftInput
	var repair bool
	cmd := &cobra.Command{
		Use:   "drift [--service S] [-e ENV] [--repair]",
		Short: "Compare what the provider runs with what the inventory says is live",
		Long: `A worker lists the provider's fleets, their instances and image, and the routers'
routes, and compares them with the inventory's live deployments: instances of the
live fleet that do not run (missing), a live fleet running another image or gone,
fleets no rollout made live (extra), and routes that do not send all traffic to the
live fleet. Services whose rollout, bake or pipeline is running are skipped. Each
check sets the imago_drift_instances metric, publishes a dev.imago.drift.detected
event per drifted service and environment, and leaves a line in imago status.

--repair starts, for each drifted service and environment, a rollout of the live
image with the last rollout's spec: a new fleet replaces the drifted one through
the spec's strategy, gates and checks. Nothing is ever patched in place.`,
		Example: `  imago drift
  imago drift --service hello -e prod -o json
  imago drift --service hello -e prod --repair
  imago drift schedule --every 15m`,
		Args: args(cobra.NoArgs),
	}
	cmd.Flags().StringVar(&in.Service, "service", "", "only this service (default: every service)")
	addEnvFlag(cmd, &in.Environment, "", "only this environment (default: every environment)")
	cmd.Flags().BoolVar(&repair, "repair", false, "start a rollout of the live image (last rollout's spec) for each drifted service and environment")
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withClient(cmd, func(c client.Client) error {
			res, err := drift.Run(cmd.Context(), c, in, repair, startedBy())
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			return printDrift(cmd, res)
		})
	}
	cmd.AddCommand(newDriftScheduleCmd())
	return cmd
}

func printDrift(cmd *cobra.Command, res drift.Result) error {
	w := cmd.OutOrStdout()
	tw := table(w)
	fmt.Fprintln(tw, "ENVIRONMENT\tSERVICE\tKIND\tFLEET\tINSTANCE\tDETAIL")
	for _, t := range res.Targets {
		switch {
		case t.Skipped != "":
			fmt.Fprintf(tw, "%s\t%s\tskipped\t-\t-\t%s\n", t.Environment, t.Service, t.Skipped)
		case !t.Drifted():
			fmt.Fprintf(tw, "%s\t%s\tnone\t%s\t-\tmatches the inventory\n", t.Environment, t.Service, dash(t.LiveFleet))
		}
		for _, it := range t.Items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Environment, t.Service, it.Kind, dash(it.FleetID), dash(it.InstanceID), it.Detail)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, res.Summary)
	for _, r := range res.Repairs {
		if r.Error != "" {
			fmt.Fprintf(w, "repair %s/%s: not started: %s\n", r.Environment, r.Service, r.Error)
			continue
		}
		fmt.Fprintf(w, "repair %s/%s: started %s (run %s), a rollout of %s with the last rollout's spec; follow it with: imago rollout status %s -e %s --watch\n",
			r.Environment, r.Service, r.WorkflowID, r.RunID, r.Image, r.Service, r.Environment)
	}
	return nil
}

func newDriftScheduleCmd() *cobra.Command {
	var in contract.DriftInput
	var every time.Duration
	cmd := &cobra.Command{
		Use:     "schedule [--every DURATION] [--service S] [-e ENV]",
		Short:   "Run the drift check on a schedule (see it with imago schedule describe imago-drift)",
		Example: "  imago drift schedule --every 15m\n  imago drift schedule --every 1h --service hello -e prod",
		Args:    args(cobra.NoArgs),
	}
	cmd.Flags().DurationVar(&every, "every", time.Hour, "time between checks")
	cmd.Flags().StringVar(&in.Service, "service", "", "only this service (default: every service)")
	addEnvFlag(cmd, &in.Environment, "", "only this environment (default: every environment)")
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withClient(cmd, func(c client.Client) error {
			if err := schedules.CreateDrift(cmd.Context(), c, every, in); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created schedule %s: a drift check every %s\n", schedules.DriftScheduleID, every)
			return nil
		})
	}
	return cmd
}
