package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/internal/watch"
)

func newRolloutCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rollout", Short: "Start and inspect rollouts"}
	cmd.AddCommand(newRolloutStartCmd(), newRolloutStatusCmd(), newRolloutListCmd())
	cmd.AddCommand(newDecisionCmds()...)
	return cmd
}

func newRolloutStartCmd() *cobra.Command {
	var file, imageID string
	var wait, watching, allowDeprecated bool
	cmd := &cobra.Command{
		Use:   "start -f FILE [--image ID] [--allow-deprecated] [--wait | --watch]",
		Short: "Start a rollout from a spec file",
		Long: `Starts the rollout a spec file describes. One rollout per service and
environment runs at a time; a second start is refused and names the running one.

With --wait it prints the rollout's events as they happen; with --watch it shows a
live display (phase, step, fleets, traffic, approvals, last event) redrawn in place
on a terminal, one line per change otherwise. Both exit 0 when the rollout
succeeded and 1 when it failed, with the reason. Ctrl-C stops watching (exit 130);
the rollout goes on.`,
		Example: `  imago rollout start -f examples/hello/rollout.yaml --image img-3f2a1c9d0b7e --watch
  imago rollout start -f examples/hello/rollout.yaml --wait -o json`,
		Args: args(cobra.NoArgs),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if err := checkSpecFlags(file, "rollout", "examples/hello/rollout.yaml"); err != nil {
			return err
		}
		if err := checkWatch(out, watching); err != nil {
			return err
		}
		r, parsed, bake, err := loadRolloutFile(cmd, file, imageID)
		if err != nil {
			return err
		}
		if allowDeprecated {
			r.Image.AllowDeprecated = true
		}
		opts := rollouts.StartOptions{StartedBy: startedBy(), Lines: parsed.LineOf, Bake: bake}
		return withClient(cmd, func(c client.Client) error {
			ctx := cmd.Context()
			run, err := rollouts.Start(ctx, c, r, opts)
			if spec.IsInvalid(err) {
				return fmt.Errorf("%s: %w", file, err) // the worker's provider cannot run it
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out.json() && !wait {
				return writeJSON(w, map[string]string{"workflowId": run.GetID(), "runId": run.GetRunID()})
			}
			if !out.json() {
				fmt.Fprintf(w, "started %s (run %s): %s → %s, image %s, %s\n", run.GetID(), run.GetRunID(), r.Service, r.Environment, r.Image.ID, r.Strategy.Type)
			}
			switch {
			case watching:
				return watchRollout(ctx, c, run, w, r.Service, r.Environment)
			case wait:
				return waitRollout(ctx, c, run, w, out.json())
			}
			if !out.json() {
				fmt.Fprintf(w, "follow it with: imago rollout status %s -e %s --watch\n", r.Service, r.Environment)
			}
			return nil
		})
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "rollout spec (YAML)")
	cmd.Flags().StringVar(&imageID, "image", "", "image ID to roll out, overriding the spec's image")
	cmd.Flags().BoolVar(&allowDeprecated, "allow-deprecated", false, "roll out an image a lifecycle rule deprecated (image.allowDeprecated in the spec)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the rollout's events; exit 0 when it succeeded, 1 when it failed")
	cmd.Flags().BoolVar(&watching, "watch", false, "follow the rollout on a live display; exit 0 when it succeeded, 1 when it failed")
	completeSpecFile(cmd)
	_ = cmd.RegisterFlagCompletionFunc("image", completeImageIDs)
	return cmd
}

// loadRolloutFile reads and checks a rollout spec as `imago rollout start`
// does before it starts anything (and `imago plan` before it plans): the
// file's every problem by field and line, an unknown or revoked image, an
// entrypoint variable env does not provide. imageID overrides the spec's
// image. It returns the normalized spec, the spec as parsed (with the
// file's lines) and the bake spec image.bake names, if any.
func loadRolloutFile(cmd *cobra.Command, file, imageID string) (r, parsed spec.Rollout, bake *spec.Bake, err error) {
	r, err = spec.LoadRollout(file)
	if err != nil && !spec.IsInvalid(err) {
		return r, r, nil, usageError{err} // a missing or unreadable spec is bad input: nothing started
	}
	// A spec that did not decode whole is reported by Normalize, with every
	// other problem of the file.
	if imageID != "" {
		r.Image = contract.ImageRef{ID: imageID}
	}
	envLine := r.Line("env") // Normalize forgets the lines
	if envLine == 0 {
		envLine = r.Line("image")
	}
	parsed = r // keeps the file's lines, which Normalize forgets
	if err := r.Normalize(); err != nil {
		return r, parsed, nil, fmt.Errorf("%s: %w", file, err)
	}
	if r.Image.ID != "" {
		// Refuse a revoked or unknown image, or one whose entrypoint uses a
		// variable env does not provide, before anything starts.
		var badEnv error
		if err := withCatalog(cmd, func(cat *catalog.Catalog) error {
			img, err := cat.Get(cmd.Context(), r.Image.ID)
			if err != nil {
				return err
			}
			if err := img.Usable(); err != nil {
				return err
			}
			badEnv = r.CheckImage(img.ID, img.Entrypoint, envLine)
			return nil
		}); err != nil {
			return r, parsed, nil, err
		}
		if badEnv != nil {
			return r, parsed, nil, fmt.Errorf("%s: %w", file, badEnv)
		}
	}
	if r.Image.Bake != "" {
		path := r.Image.Bake
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(file), path)
		}
		b, err := loadBake(path)
		if err != nil {
			return r, parsed, nil, err
		}
		bake = &b
	}
	return r, parsed, bake, nil
}

// watchRollout follows run on a live display, then prints its outcome as --wait does.
func watchRollout(ctx context.Context, c client.Client, run client.WorkflowRun, w io.Writer, service, env string) error {
	var res contract.RolloutResult
	err := follow(ctx, c, w, watched{
		run:    run,
		noun:   "rollout",
		resume: fmt.Sprintf("imago rollout status %s -e %s --watch", service, env),
		frame:  framesOf(run.GetID(), watch.RolloutFrame),
		result: &res,
	})
	var stopped interruptedError
	if errors.As(err, &stopped) {
		return err
	}
	return rolloutOutcome(w, run, res, err, false)
}

// waitRollout prints the rollout's events as they happen, then its outcome.
func waitRollout(ctx context.Context, c client.Client, run client.WorkflowRun, w io.Writer, asJSON bool) error {
	done := make(chan error, 1)
	var res contract.RolloutResult
	go func() { done <- run.Get(ctx, &res) }()
	seen := 0
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	printNew := func() {
		if asJSON {
			return
		}
		val, err := c.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), contract.QueryProgress)
		if err != nil {
			return
		}
		var p contract.RolloutProgress
		if val.Get(&p) != nil {
			return
		}
		// Events are a bounded window over EventCount events so far.
		fresh := p.EventCount - seen
		if fresh > len(p.Events) {
			fresh = len(p.Events)
		}
		for _, e := range p.Events[len(p.Events)-fresh:] {
			fmt.Fprintf(w, "%s  %-16s %s\n", e.Time.Local().Format("15:04:05"), e.Phase, e.Message)
		}
		seen = p.EventCount
	}
	for {
		select {
		case err := <-done:
			printNew()
			return rolloutOutcome(w, run, res, err, asJSON)
		case <-tick.C:
			printNew()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// rolloutOutcome prints how a followed rollout ended and returns its failure.
func rolloutOutcome(w io.Writer, run client.WorkflowRun, res contract.RolloutResult, err error, asJSON bool) error {
	if err != nil {
		if asJSON {
			out := map[string]any{"workflowId": run.GetID(), "runId": run.GetRunID(), "status": "Failed", "error": rollouts.Reason(err)}
			if res := rollouts.ResultOf(err); res != nil { // a bake time's rollback: the failed measurement
				out["result"] = res
			}
			_ = writeJSON(w, out)
		}
		return fmt.Errorf("%s", rollouts.Reason(err))
	}
	if asJSON {
		return writeJSON(w, map[string]any{"workflowId": run.GetID(), "runId": run.GetRunID(), "status": "Succeeded", "result": res})
	}
	fmt.Fprintf(w, "rollout succeeded: %s serves on fleet %s (%d instances)", res.ImageID, res.FleetID, res.Instances)
	if len(res.Decommissioned) > 0 {
		fmt.Fprintf(w, "; decommissioned %s", strings.Join(res.Decommissioned, ", "))
	}
	fmt.Fprintln(w)
	return nil
}

func newRolloutStatusCmd() *cobra.Command {
	var env string
	var watching bool
	cmd := &cobra.Command{
		Use:   "status SERVICE [-e ENV] [--watch]",
		Short: "Show the latest rollout of a service to an environment",
		Long: `Shows the latest rollout of SERVICE to ENV: status, phase, step, image, fleets,
traffic, approvals, analyses and its recent events. Each analysis shows what it
measures (the query as run), its counts and its latest 10 measurements with time,
value and verdict; a running one shows those taken so far.

With --watch it follows the rollout on a live display until it ends (redrawn in
place on a terminal, one line per change otherwise) and exits 0 when the rollout
succeeded, 1 when it failed. Ctrl-C stops watching (exit 130); the rollout goes on.`,
		Example: `  imago rollout status hello -e dev
  imago rollout status hello -e prod --watch
  imago rollout status hello -e dev -o json`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: completeServiceArg,
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if err := checkWatch(out, watching); err != nil {
			return err
		}
		return withClient(cmd, func(c client.Client) error {
			ctx := cmd.Context()
			// The converter reads a running analysis' heartbeat; without it, status shows the rest.
			dc, _, _ := app.ConfigFromEnv().Converters(ctx)
			st, err := rollouts.GetLive(ctx, c, dc, a[0], env)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if watching {
				return watchRollout(ctx, c, c.GetWorkflow(ctx, st.WorkflowID, st.RunID), w, a[0], env)
			}
			if out.json() {
				return writeJSON(w, st)
			}
			return printRolloutStatus(w, st)
		})
	}
	cmd.Flags().BoolVar(&watching, "watch", false, "follow the rollout on a live display until it ends; exit 0 when it succeeded, 1 when it failed")
	addEnvFlag(cmd, &env, spec.DefaultEnvironment, "environment")
	return cmd
}

// printRolloutStatus is the table form of rollout status.
func printRolloutStatus(w io.Writer, st rollouts.Status) error {
	tw := table(w)
	fmt.Fprintf(tw, "Rollout:\t%s (run %s)\n", st.WorkflowID, st.RunID)
	fmt.Fprintf(tw, "Status:\t%s\n", st.Status)
	if p := st.Progress; p != nil {
		fmt.Fprintf(tw, "Phase:\t%s\n", p.Phase)
		if p.Step != "" {
			fmt.Fprintf(tw, "Step:\t%s\n", p.Step)
		}
		if p.BakeTimeEnds != nil && st.Status == "Running" {
			fmt.Fprintf(tw, "Bake time:\t%s left (until %s)\n", max(time.Until(*p.BakeTimeEnds), 0).Round(time.Second), p.BakeTimeEnds.Local().Format("15:04:05"))
		}
		fmt.Fprintf(tw, "Image:\t%s\n", p.ImageID)
		switch {
		case p.RollbackFrom != "":
			fmt.Fprintf(tw, "Rollback:\tfrom %s to %s (the previous deployable image)\n", p.RollbackFrom, p.ImageID)
		case p.Action == contract.ActionRollback:
			fmt.Fprintf(tw, "Rollback:\tto %s\n", p.ImageID)
		}
		fmt.Fprintf(tw, "Strategy:\t%s\n", p.Strategy)
		if p.NewFleet != "" {
			fmt.Fprintf(tw, "New fleet:\t%s (%d instances)\n", p.NewFleet, p.Instances)
		}
		if len(p.OldFleets) > 0 {
			fmt.Fprintf(tw, "Old fleets:\t%s\n", strings.Join(p.OldFleets, ", "))
		}
		if p.BaselineFleet != "" {
			fmt.Fprintf(tw, "Baseline fleet:\t%s (the live image, beside the canary)\n", p.BaselineFleet)
		}
		var ws []string
		for _, fw := range p.Weights {
			ws = append(ws, fmt.Sprintf("%s=%d%%", fw.FleetID, fw.Weight))
		}
		if len(ws) > 0 {
			fmt.Fprintf(tw, "Traffic:\t%s\n", strings.Join(ws, " "))
		}
		if p.RouteRules != nil {
			fmt.Fprintf(tw, "Route rules:\t%s\n", p.RouteRules)
		}
		if p.StartedBy != "" {
			fmt.Fprintf(tw, "Started by:\t%s\n", p.StartedBy)
		}
		if pending := watch.RolloutFrame(st.WorkflowID, *p).Value(watch.LabelApprovals); strings.HasPrefix(pending, "pending: ") {
			fmt.Fprintf(tw, "Waiting for:\t%s\n", strings.TrimPrefix(pending, "pending: "))
		}
		if held := watch.RolloutFrame(st.WorkflowID, *p).Value(watch.LabelHeld); held != "" {
			fmt.Fprintf(tw, "Held:\t%s\n", held) // a deployment window or a freeze
		}
		for _, ap := range p.Approvals {
			fmt.Fprintf(tw, "Approved:\t%s by %s%s\n", ap.Gate, ap.By, because(ap.Reason))
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
	if p := st.Progress; p != nil && len(p.Analyses) > 0 {
		if err := printAnalyses(w, p.Analyses); err != nil {
			return err
		}
	}
	if p := st.Progress; p != nil {
		printEvents(w, p.Events)
	}
	return nil
}

// printEvents shows a rollout's or bake's latest events, when it has any.
func printEvents(w io.Writer, events []contract.ProgressEvent) {
	if len(events) == 0 {
		return
	}
	fmt.Fprintln(w, "\nEvents:")
	for _, e := range events {
		fmt.Fprintf(w, "  %s  %-16s %s\n", e.Time.Local().Format("15:04:05"), e.Phase, e.Message)
	}
}

// printAnalyses shows each analysis of a rollout: its outcome, what it
// measures (the query once), and its latest measurements with value and verdict.
func printAnalyses(w io.Writer, runs []contract.AnalysisRun) error {
	fmt.Fprintln(w, "\nAnalyses:")
	for _, a := range runs {
		fmt.Fprintf(w, "  %s of %s", a.Name, a.FleetID)
		if a.BaselineFleetID != "" {
			fmt.Fprintf(w, " against baseline %s", a.BaselineFleetID)
		}
		fmt.Fprintf(w, ": %s", a.Phase)
		if a.Message != "" {
			fmt.Fprintf(w, " — %s", a.Message)
		}
		fmt.Fprintln(w)
		if a.Source != "" {
			fmt.Fprintf(w, "    measures: %s; passes at %s; no data counts as %s\n", a.Source, a.Condition, a.OnNoData)
		}
		if a.Query != "" {
			fmt.Fprintf(w, "    query:    %s\n", strings.Join(strings.Fields(a.Query), " "))
		}
		if a.Counts != nil {
			fmt.Fprintf(w, "    %s\n", a.Counts.Text(len(a.Measurements)))
		}
		if j := a.Judgment; j != nil {
			fmt.Fprintf(w, "    %s\n", analysis.JudgmentLine(*j))
			tw := table(w)
			fmt.Fprintln(tw, "    METRIC\tCANARY\tBASELINE\tCHANGE\tU\tP\tVERDICT")
			for _, m := range j.Metrics {
				fmt.Fprintf(tw, "    %s\t%s (%d)\t%s (%d)\t%s\t%g\t%.3g\t%s\n", m.Name, analysis.FormatValue(&m.CanaryMedian), m.CanarySamples,
					analysis.FormatValue(&m.BaselineMedian), m.BaselineSamples, analysis.FormatChange(m.Change), m.U, m.P, m.Verdict)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if len(a.Measurements) == 0 {
			continue
		}
		tw := table(w)
		fmt.Fprintln(tw, "    TIME\tVALUE\tVERDICT\tMEASUREMENT")
		for _, m := range a.Measurements {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", m.Time.Local().Format(time.TimeOnly), analysis.FormatValue(m.Value), m.Verdict(), m.Message)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func newRolloutListCmd() *cobra.Command {
	var o rollouts.ListOptions
	cmd := &cobra.Command{
		Use:   "list [--service S] [-e ENV] [--limit N]",
		Short: "List rollouts, newest first",
		Example: `  imago rollout list --service hello
  imago rollout list -e prod --limit 10 -o json`,
		Args: args(cobra.NoArgs),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if o.Limit < 1 {
			return usageError{fmt.Errorf("--limit %d: want a number of rollouts, 1 or more", o.Limit)}
		}
		return withClient(cmd, func(c client.Client) error {
			list, err := rollouts.List(cmd.Context(), c, o)
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), nonNil(list))
			}
			if len(list) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no rollouts match; start one with: imago rollout start -f FILE")
				return nil
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ROLLOUT\tSTATUS\tPHASE\tIMAGE\tSTARTED")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.WorkflowID, s.Status, dash(s.Phase.String()), dash(s.Image), s.Started.Local().Format(time.DateTime))
			}
			return tw.Flush()
		})
	}
	cmd.Flags().StringVar(&o.Service, "service", "", "only rollouts of this service")
	addEnvFlag(cmd, &o.Environment, "", "only rollouts to this environment")
	cmd.Flags().IntVar(&o.Limit, "limit", 50, "at most this many")
	_ = cmd.RegisterFlagCompletionFunc("service", completeServices)
	return cmd
}

func startedBy() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		name += "@" + h
	}
	return name
}
