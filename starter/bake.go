package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/bakes"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

func newBakeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bake", Short: "Bake images"}
	cmd.AddCommand(newBakeStartCmd())
	return cmd
}

// loadBake reads and validates a bake spec; any problem is bad input.
func loadBake(path string) (spec.Bake, error) {
	b, err := spec.LoadBake(path)
	if err != nil {
		return b, usageError{err}
	}
	if err := b.Normalize(); err != nil {
		return b, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

func newBakeStartCmd() *cobra.Command {
	var file string
	var force, wait bool
	cmd := &cobra.Command{
		Use:   "start -f FILE [--force] [--wait]",
		Short: "Bake an image from a bake spec",
		Long: `Computes the bake's input digest; when the catalog already has an image built
from the same inputs it returns that image without building (unless --force).
Otherwise it builds, boots one instance to test the image, publishes it and moves
the spec's channel (default latest) to it.`,
		Example: `  imago bake start -f examples/hello/bake.yaml --wait`,
		Args:    args(cobra.NoArgs),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if err := checkSpecFlags(out, file, "bake", "examples/hello/bake.yaml"); err != nil {
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
			if !wait {
				if out.json() {
					return writeJSON(w, map[string]string{"workflowId": run.GetID(), "runId": run.GetRunID()})
				}
				fmt.Fprintf(w, "started %s (run %s)\n", run.GetID(), run.GetRunID())
				return nil
			}
			var res workflows.BakeResult
			if err := run.Get(ctx, &res); err != nil {
				return fmt.Errorf("%s", rollouts.Reason(err))
			}
			if out.json() {
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
		})
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "bake spec (YAML)")
	cmd.Flags().BoolVar(&force, "force", false, "build even when an image with the same inputs exists")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the bake; exit 0 when it succeeded, 1 when it failed")
	return cmd
}
