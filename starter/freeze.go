package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/freezes"
)

func newFreezeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "freeze",
		Short: "Stop the line: hold rollouts of a service or environment (or all) until the freeze ends",
		Long: `A freeze holds every rollout it covers, new and in flight: a new rollout waits in
phase frozen before it provisions; one in flight keeps its current traffic split
and waits before its next traffic change (never mid-switch). They go on when the
freeze ends (imago freeze end, or its --until passes). Aborts and rollbacks are
never frozen. Freezes are kept in the catalog.`,
		Example: `  imago freeze start -e prod --reason "incident INC-42"
  imago freeze start --service web --reason "db migration" --until 2h
  imago freeze list
  imago freeze end -e prod`,
	}
	cmd.AddCommand(newFreezeStartCmd(), newFreezeEndCmd(), newFreezeListCmd())
	return cmd
}

func freezeProblem(err error) error {
	var p *freezes.Problem
	if errors.As(err, &p) {
		return usageError{fmt.Errorf("--%s: %s", p.Field, p.Msg)}
	}
	return err
}

func newFreezeStartCmd() *cobra.Command {
	var o freezes.StartOptions
	var until string
	cmd := &cobra.Command{
		Use:   "start [--service S] [-e ENV] --reason R [--until TIME]",
		Short: "Freeze the rollouts of a service, an environment, both, or everything",
		Example: `  imago freeze start -e prod --reason "incident INC-42"
  imago freeze start --service web -e prod --reason "db migration" --until 2026-12-24T18:00:00Z`,
		Args: args(cobra.NoArgs),
	}
	cmd.Flags().StringVar(&o.Service, "service", "", "the service to freeze (default: every service)")
	cmd.Flags().StringVarP(&o.Environment, "environment", "e", "", "the environment to freeze (default: every environment)")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why (required; shown to everyone it holds)")
	cmd.Flags().StringVar(&until, "until", "", "when it ends by itself: an RFC 3339 time or a duration such as 2h (default: when ended)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var err error
		if o.Until, err = freezes.ParseUntil(until, time.Now()); err != nil {
			return freezeProblem(err)
		}
		if err := o.Validate(time.Now()); err != nil {
			return freezeProblem(err)
		}
		o.By = startedBy()
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			f, err := freezes.Start(cmd.Context(), cat, o)
			if err != nil {
				return freezeProblem(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "froze %s: %s (%s); rollouts there hold before their next step; end it with: %s\n",
				f.Scope(), f.Reason, untilText(f), f.EndCommand())
			return nil
		})
	}
	return cmd
}

func newFreezeEndCmd() *cobra.Command {
	var service, env string
	cmd := &cobra.Command{
		Use:     "end [--service S] [-e ENV]",
		Short:   "End the freeze of a scope: the rollouts it held go on",
		Example: "  imago freeze end -e prod\n  imago freeze end --service web",
		Args:    args(cobra.NoArgs),
	}
	cmd.Flags().StringVar(&service, "service", "", "the service of the freeze (as it was started)")
	cmd.Flags().StringVarP(&env, "environment", "e", "", "the environment of the freeze (as it was started)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			return withClient(cmd, func(c client.Client) error {
				ended, err := freezes.End(cmd.Context(), cat, c, service, env, startedBy())
				if errors.Is(err, catalog.ErrNotFound) {
					return err
				}
				if ended.Freeze.Reason != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "ended the freeze of %s (%s); told %d frozen rollouts to go on\n",
						ended.Freeze.Scope(), ended.Freeze.Reason, len(ended.Signalled))
				}
				return err
			})
		})
	}
	return cmd
}

func newFreezeListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the freezes in force",
		Example: "  imago freeze list\n  imago freeze list -o json",
		Args:    args(cobra.NoArgs),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			list, err := freezes.List(cmd.Context(), cat)
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			if len(list) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), `no freezes; start one with: imago freeze start -e ENV --reason "why"`)
				return nil
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "SCOPE\tREASON\tBY\tSINCE\tUNTIL")
			for _, f := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Scope(), f.Reason, f.By, f.Since.Local().Format(time.DateTime), untilText(f))
			}
			return tw.Flush()
		})
	}
	return cmd
}

func untilText(f contract.Freeze) string {
	if f.Until == nil {
		return "until ended"
	}
	return "until " + f.Until.Local().Format(time.DateTime+" MST")
}
