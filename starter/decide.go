package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// newDecisionCmds are the people-in-the-loop commands: approve, abort, promote, rollback.
func newDecisionCmds() []*cobra.Command {
	specs := []struct{ name, short, long, example string }{
		{contract.UpdateApprove, "Approve a rollout waiting at a gate or an indefinite pause",
			"Releases the approval gate before cutover, an indefinite canary pause, or an inconclusive analysis. Who and why are recorded.",
			`  imago rollout approve hello -e prod --reason "change CHG-1234 approved"`},
		{contract.UpdateAbort, "Abort a rollout: traffic back to the old fleet, the new fleet torn down",
			"Works in any phase before the old fleet is decommissioned.",
			`  imago rollout abort hello -e prod --reason "wrong config"`},
		{contract.UpdatePromote, "Skip the remaining pauses and the soak",
			"Analyses still run; pauses and the soak are skipped.",
			`  imago rollout promote hello -e staging`},
		{contract.UpdateRollback, "Roll back: during the soak one route switch; after it a new rollout of the previous image",
			`While the rollout runs and traffic has moved, traffic goes back to the warm old fleet
and the new one is torn down. Once the rollout has ended, rollback starts a new rollout
of the previous deployable image with the same spec (as CodeDeploy does): the rollout
finds that image itself (the newest one deployed successfully there, not revoked, other
than the live one), and rollout status shows from which image to which. With no such
image it is refused and nothing is started.`,
			`  imago rollout rollback hello -e prod --reason "latency regression"`},
	}
	var cmds []*cobra.Command
	for _, s := range specs {
		s := s
		var env, reason string
		var wait bool
		cmd := &cobra.Command{
			Use:               s.name + " SERVICE -e ENV [--reason R]",
			Short:             s.short,
			Long:              s.long,
			Example:           s.example,
			Args:              args(cobra.ExactArgs(1)),
			ValidArgsFunction: completeServiceArg,
			RunE: func(cmd *cobra.Command, a []string) error {
				return withClient(cmd, func(c client.Client) error {
					ctx := cmd.Context()
					service := a[0]
					if s.name == contract.UpdateRollback {
						running, err := rollouts.Running(ctx, c, service, env)
						if err != nil {
							return err
						}
						if !running {
							return rollbackToPrevious(cmd, service, env, reason, wait)
						}
					}
					if err := rollouts.Decide(ctx, c, service, env, s.name, startedBy(), reason); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s accepted by %s\n", s.name, contract.RolloutWorkflowID(service, env))
					return nil
				})
			},
		}
		addEnvFlag(cmd, &env, spec.DefaultEnvironment, "environment")
		cmd.Flags().StringVar(&reason, "reason", "", "why, recorded with the decision")
		if s.name == contract.UpdateRollback {
			cmd.Flags().BoolVar(&wait, "wait", false, "after decommission: follow the new rollout of the previous image")
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

// rollbackToPrevious starts a rollout of the previous deployable image with the
// last rollout's spec.
func rollbackToPrevious(cmd *cobra.Command, service, env, reason string, wait bool) error {
	return withClient(cmd, func(c client.Client) error {
		ctx := cmd.Context()
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			run, back, err := rollouts.RollbackToPrevious(ctx, c, cat, service, env, startedBy())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rolling %s/%s back to %s: started %s (run %s)%s\n", env, service, back.Image.ID, run.GetID(), run.GetRunID(), because(reason))
			if !wait {
				return nil
			}
			return waitRollout(ctx, c, run, cmd.OutOrStdout(), false)
		})
	})
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}
