package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/schedules"
)

func newImageLifecycleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lifecycle",
		Short: "Deprecate and delete old images by rule",
		Long: `A service's lifecycle rule keeps its newest --keep-last images and, beyond them,
deprecates images older than --deprecate-after and deletes those older than
--delete-after. It never touches an image that is live, within a rollback's retain,
on a channel, or the base of any of those. New rollouts refuse a deprecated image
unless started with --allow-deprecated. Deleting removes the archive and the SBOM
and keeps the record with a tombstone (imago image show says by which rule, when).
A sweep (run, or schedule) only reports unless --apply.`,
		Example: `  imago image lifecycle set --service hello --keep-last 5 --deprecate-after 30d --delete-after 90d
  imago image lifecycle show
  imago image lifecycle run
  imago image lifecycle run --apply
  imago image lifecycle schedule --every 24h --apply`,
	}
	cmd.AddCommand(newLifecycleSetCmd(), newLifecycleShowCmd(), newLifecycleRunCmd(), newLifecycleScheduleCmd())
	return cmd
}

// days is a duration flag that also takes whole days ("30d").
type days struct{ d *contract.Duration }

func (f days) String() string {
	if f.d == nil {
		return "0"
	}
	return contract.FormatAge(*f.d)
}

func (f days) Set(s string) (err error) {
	*f.d, err = contract.ParseAge(s)
	return err
}

func (days) Type() string { return "duration" }

func newLifecycleSetCmd() *cobra.Command {
	var r contract.LifecycleRule
	cmd := &cobra.Command{
		Use:     "set --service S --keep-last N [--deprecate-after D] [--delete-after D]",
		Short:   "Set a service's lifecycle rule (replacing its previous one)",
		Example: "  imago image lifecycle set --service hello --keep-last 5 --deprecate-after 30d --delete-after 90d",
		Args:    args(cobra.NoArgs),
	}
	cmd.Flags().StringVar(&r.Service, "service", "", "the service whose images the rule governs")
	cmd.Flags().IntVar(&r.KeepLast, "keep-last", 0, "the newest N images are always kept")
	cmd.Flags().Var(days{&r.DeprecateAfter}, "deprecate-after", "deprecate images older than this (30d, 720h)")
	cmd.Flags().Var(days{&r.DeleteAfter}, "delete-after", "delete images older than this (90d)")
	_ = cmd.MarkFlagRequired("keep-last")
	_ = cmd.RegisterFlagCompletionFunc("service", completeServices)
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if r.Service == "" {
			return usageError{fmt.Errorf("--service is required")}
		}
		if err := r.Check(); err != nil {
			return usageError{err}
		}
		r.By = startedBy()
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			got, err := cat.SetLifecycle(cmd.Context(), r)
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), got)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "set %s: %s; see what it does with: imago image lifecycle run\n", got.Name(), ruleText(got))
			return nil
		})
	}
	return cmd
}

func ruleText(r contract.LifecycleRule) string {
	s := fmt.Sprintf("keep the newest %d", r.KeepLast)
	if r.DeprecateAfter > 0 {
		s += ", deprecate after " + contract.FormatAge(r.DeprecateAfter)
	}
	if r.DeleteAfter > 0 {
		s += ", delete after " + contract.FormatAge(r.DeleteAfter)
	}
	return s
}

func newLifecycleShowCmd() *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:     "show [--service S]",
		Short:   "Show the lifecycle rules",
		Example: "  imago image lifecycle show\n  imago image lifecycle show --service hello -o json",
		Args:    args(cobra.NoArgs),
	}
	cmd.Flags().StringVar(&service, "service", "", "only this service's rule")
	_ = cmd.RegisterFlagCompletionFunc("service", completeServices)
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			var rules []contract.LifecycleRule
			if service != "" {
				r, err := cat.Lifecycle(cmd.Context(), service)
				if err != nil {
					return err
				}
				rules = append(rules, r)
			} else {
				var err error
				if rules, err = cat.LifecycleRules(cmd.Context()); err != nil {
					return err
				}
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), nonNil(rules))
			}
			if len(rules) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no lifecycle rules; set one with: imago image lifecycle set --service S --keep-last N --deprecate-after D")
				return nil
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "SERVICE\tKEEP LAST\tDEPRECATE AFTER\tDELETE AFTER\tSET BY\tSET")
			for _, r := range rules {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", r.Service, r.KeepLast, durOrDash(r.DeprecateAfter), durOrDash(r.DeleteAfter), dash(r.By), r.Time.Local().Format(time.DateTime))
			}
			return tw.Flush()
		})
	}
	return cmd
}

func durOrDash(d contract.Duration) string {
	if d == 0 {
		return "-"
	}
	return contract.FormatAge(d)
}

func newLifecycleRunCmd() *cobra.Command {
	var apply bool
	cmd := &cobra.Command{
		Use:     "run [--apply]",
		Short:   "Sweep once and print what each rule keeps (and why), deprecates and deletes",
		Example: "  imago image lifecycle run\n  imago image lifecycle run --apply -o json",
		Args:    args(cobra.NoArgs),
	}
	cmd.Flags().BoolVar(&apply, "apply", false, "deprecate and delete (default: only report)")
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withClient(cmd, func(c client.Client) error {
			run, err := c.ExecuteWorkflow(cmd.Context(), client.StartWorkflowOptions{
				ID: "image-lifecycle/" + startedBy(), TaskQueue: contract.TaskQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
				StaticSummary:            fmt.Sprintf("image lifecycle · apply=%t", apply),
			}, contract.WorkflowLifecycle, contract.LifecycleInput{Apply: apply})
			if err != nil {
				return fmt.Errorf("start the image lifecycle sweep: %w", err)
			}
			var res contract.LifecycleResult
			if err := run.Get(cmd.Context(), &res); err != nil {
				return fmt.Errorf("image lifecycle: %w", err)
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			tw := table(w)
			fmt.Fprintln(tw, "IMAGE\tSERVICE\tCREATED\tACTION\tWHY")
			for _, d := range res.Decisions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ImageID, d.Service, d.Created.Local().Format(time.DateTime), d.Action, d.Why)
			}
			tw.Flush()
			fmt.Fprintln(w, res.Summary)
			return nil
		})
	}
	return cmd
}

func newLifecycleScheduleCmd() *cobra.Command {
	var every time.Duration
	var in contract.LifecycleInput
	cmd := &cobra.Command{
		Use:     "schedule [--every DURATION] [--apply]",
		Short:   "Run the lifecycle sweep on a schedule (see it with imago schedule describe " + schedules.LifecycleScheduleID + ")",
		Example: "  imago image lifecycle schedule --every 24h\n  imago image lifecycle schedule --every 24h --apply",
		Args:    args(cobra.NoArgs),
	}
	cmd.Flags().DurationVar(&every, "every", time.Hour, "time between sweeps")
	cmd.Flags().BoolVar(&in.Apply, "apply", false, "deprecate and delete (default: only report)")
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withClient(cmd, func(c client.Client) error {
			if err := schedules.CreateLifecycle(cmd.Context(), c, every, in); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created schedule %s: a sweep every %s (apply=%t)\n", schedules.LifecycleScheduleID, every, in.Apply)
			return nil
		})
	}
	return cmd
}
