package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/internal/watch"
)

func newCampaignCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "campaign",
		Short: "Roll an image change across many services, ring by ring",
		Long: `A campaign rolls what each service's channel names (image: {channel: stable})
to the environments of its rings in order, with the spec of each service's last
deployment there, at most a ring's parallel rollouts at a time. Each rollout is
a workflow of its own (imago rollout status SERVICE -e ENV). When its error
budget is spent the campaign halts: no new rollout starts until imago campaign
resume (which tries the ring's failed rollouts again) or abort.`,
		Example: `  imago campaign start -f examples/campaign/campaign.yaml --watch
  imago campaign status stable-2026-12
  imago campaign resume stable-2026-12 --reason "fixed the health check"`,
	}
	cmd.AddCommand(newCampaignStartCmd(), newCampaignStatusCmd(),
		newDecideCmd("campaign", "stable-2026-12", campaigns.Decide, contract.UpdateResume, "Let a halted campaign go on (its ring's failed rollouts are tried again)", "fixed the health check"),
		newDecideCmd("campaign", "stable-2026-12", campaigns.Decide, contract.UpdateApprove, "Approve the ring a campaign waits for", "staging looks good"),
		newDecideCmd("campaign", "stable-2026-12", campaigns.Decide, contract.UpdateAbort, "End a campaign: no new rollout starts; running ones finish on their own", "change freeze"))
	return cmd
}

func newCampaignStartCmd() *cobra.Command {
	var file string
	var wait, watching bool
	cmd := &cobra.Command{
		Use:   "start -f FILE [--wait | --watch]",
		Short: "Start a campaign",
		Long: `Starts the campaign in FILE. With --wait or --watch it exits 0 when the campaign
ended done and 1 when it failed or was aborted, with the reason; a halted
campaign keeps them waiting until someone resumes or aborts it.`,
		Example: `  imago campaign start -f examples/campaign/campaign.yaml --watch`,
		Args:    args(cobra.NoArgs),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the campaign spec (YAML)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the campaign to end")
	cmd.Flags().BoolVar(&watching, "watch", false, "show the campaign's progress live until it ends")
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if err := checkSpecFlags(file, "campaign", "examples/campaign/campaign.yaml"); err != nil {
			return err
		}
		s, err := spec.LoadCampaign(file)
		if err != nil {
			if spec.IsInvalid(err) {
				return err
			}
			return usageError{err}
		}
		return withClient(cmd, func(c client.Client) error {
			run, err := campaigns.Start(cmd.Context(), c, s.CampaignSpec, startedBy())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "started %s (run %s)\n", run.GetID(), run.GetRunID())
			if !wait && !watching {
				fmt.Fprintf(w, "watch it with: imago campaign status %s --watch\n", s.Name)
				return nil
			}
			return campaignWait(cmd, c, s.Name, watching)
		})
	}
	return cmd
}

// campaignWait waits for the campaign's current run (following continue-as-new)
// and prints its reason.
func campaignWait(cmd *cobra.Command, c client.Client, name string, watching bool) error {
	w := cmd.OutOrStdout()
	run := c.GetWorkflow(cmd.Context(), contract.CampaignWorkflowID(name), "")
	var res contract.CampaignResult
	var err error
	if watching {
		err = follow(cmd.Context(), c, w, campaignWatch(run, name, &res))
	} else {
		err = run.Get(cmd.Context(), &res)
	}
	if err != nil {
		return campaignErr(name, err)
	}
	fmt.Fprintln(w, res.Reason)
	return nil
}

func campaignWatch(run client.WorkflowRun, name string, res *contract.CampaignResult) watched {
	return watched{
		run: run, noun: "campaign", resume: "imago campaign status " + name + " --watch", result: res,
		frame: framesOf(run.GetID(), campaignFrame),
	}
}

// campaignFrame is one look at a campaign: phase, budget, each ring's counts.
func campaignFrame(id string, p contract.CampaignProgress) watch.Frame {
	_, ended := p.Phase.Outcome()
	f := watch.Frame{Title: id, Started: p.StartedAt, Ended: ended}
	last := ""
	if n := len(p.Events); n > 0 {
		last = p.Events[n-1].Message
	}
	f.Rows = []watch.Row{
		{Label: watch.LabelPhase, Value: p.Phase.String()},
		{Label: "Budget", Value: fmt.Sprintf("%d failed, halts after %d (since the last resume)", p.Failed, p.Budget)},
	}
	if len(p.Bakes) > 0 {
		f.Rows = append(f.Rows, watch.Row{Label: "Rebuild", Value: bakesLine(p.Bakes)})
	}
	for i, rs := range p.Rings {
		f.Rows = append(f.Rows, watch.Row{Label: fmt.Sprintf("Ring %d", i+1), Value: ringLine(rs)})
	}
	f.Rows = append(f.Rows, watch.Row{Label: watch.LabelLast, Value: last})
	if p.Error != "" {
		f.Rows = append(f.Rows, watch.Row{Label: watch.LabelError, Value: p.Error})
	}
	return f
}

// ringLine is "prod: running — 3 succeeded, 1 running, 1 failed, 4 pending".
func ringLine(rs contract.RingStatus) string {
	n := map[contract.TargetState]int{}
	for _, t := range rs.Targets {
		n[t.State]++
	}
	var parts []string
	for _, s := range []contract.TargetState{contract.TargetSucceeded, contract.TargetRunning, contract.TargetFailed,
		contract.TargetPending, contract.TargetUnchanged, contract.TargetSkipped} {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no rollouts"}
	}
	return fmt.Sprintf("%s: %s — %s", strings.Join(rs.Environments, ", "), rs.State, strings.Join(parts, ", "))
}

func newCampaignStatusCmd() *cobra.Command {
	var watching bool
	cmd := &cobra.Command{
		Use:   "status NAME [--watch]",
		Short: "Show a campaign's rings and rollouts",
		Example: `  imago campaign status stable-2026-12
  imago campaign status stable-2026-12 --watch
  imago campaign status stable-2026-12 -o json`,
		Args: args(cobra.ExactArgs(1)),
	}
	cmd.Flags().BoolVar(&watching, "watch", false, "show the campaign's progress live until it ends")
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if err := checkWatch(out, watching); err != nil {
			return err
		}
		return withClient(cmd, func(c client.Client) error {
			r, err := campaigns.Latest(cmd.Context(), c, a[0])
			if err != nil {
				return err
			}
			if watching {
				return campaignWait(cmd, c, a[0], true)
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			writeCampaign(cmd.OutOrStdout(), r)
			return nil
		})
	}
	return cmd
}

func writeCampaign(w io.Writer, r campaigns.Run) {
	p := r.Progress
	fmt.Fprintf(w, "Campaign:  %s\nRun:       %s (%s, run %d of the chain)\nStatus:    %s\nPhase:     %s\nBudget:    %d failed, halts after %d\n",
		p.Name, r.WorkflowID, r.RunID, p.Runs, r.Status, p.Phase, p.Failed, p.Budget)
	if p.Gate != "" {
		fmt.Fprintf(w, "Waiting:   approval of %s\n", p.Gate)
	}
	if p.Error != "" {
		fmt.Fprintf(w, "Error:     %s\n", p.Error)
	}
	if len(p.Bakes) > 0 {
		fmt.Fprintf(w, "Rebuild:   %s\n", bakesLine(p.Bakes))
		tw := table(w)
		for _, b := range p.Bakes {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", b.Service, b.BakeID, bakeState(b), b.ImageID, b.Error)
		}
		tw.Flush()
	}
	for i, rs := range p.Rings {
		fmt.Fprintf(w, "Ring %d:    %s\n", i+1, ringLine(rs))
		tw := table(w)
		for _, t := range rs.Targets {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", t.Service, t.Environment, t.State, t.ImageID, t.Error)
		}
		tw.Flush()
	}
}

func campaignErr(name string, err error) error { return workflowErr("campaign", name, err) }

// workflowErr is a pipeline's or campaign's failure as the CLI prints it;
// Ctrl-C while watching stays an interruption (exit 130).
func workflowErr(noun, name string, err error) error {
	var stopped interruptedError
	if errors.As(err, &stopped) {
		return err
	}
	return fmt.Errorf("%s %s: %s", noun, name, rollouts.Reason(err))
}
