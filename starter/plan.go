package main

import (
	"github.com/spf13/cobra"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/plan"
)

func newPlanCmd() *cobra.Command {
	var file, imageID string
	cmd := &cobra.Command{
		Use:   "plan -f FILE [--image ID]",
		Short: "Preview a rollout: its timeline, peak instances, approvals and duration",
		Long: `Runs the real Rollout workflow on a simulated clock against a simulated copy
of the target, and prints what the rollout would do: each phase, wave, pause,
analysis, gate, hook, window wait and freeze with its simulated start and
duration, the peak instance count and capacity budget use, the approvals it
will ask for, and the total expected duration.

The live fleet and its size come from the inventory, provision and boot times
from what the last rollouts there measured (otherwise stated defaults),
freezes from the catalog and windows from the spec. Approvals are granted at
once and listed; analyses and hooks pass. It starts nothing, touches no
provider and needs no Temporal server. A spec that would not start fails as
'imago rollout start' fails.`,
		Example: `  imago plan -f examples/hello/canary.yaml --image img-3f2a1c9d0b7e
  imago plan -f examples/hello/rollout.yaml -o json`,
		Args: args(cobra.NoArgs),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if err := checkSpecFlags(file, "rollout", "examples/hello/rollout.yaml"); err != nil {
			return err
		}
		r, _, bake, err := loadRolloutFile(cmd, file, imageID)
		if err != nil {
			return err
		}
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			p, err := plan.Run(cmd.Context(), cat, r, plan.Options{Bake: bake})
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), p)
			}
			return p.WriteText(cmd.OutOrStdout())
		})
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "rollout spec (YAML)")
	cmd.Flags().StringVar(&imageID, "image", "", "image ID to plan for, overriding the spec's image")
	completeSpecFile(cmd)
	_ = cmd.RegisterFlagCompletionFunc("image", completeImageIDs)
	return cmd
}
