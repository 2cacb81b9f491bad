package workflows

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/contract"
)

// Error types of campaigns that did not succeed.
const (
	ErrCampaignFailed  = "CampaignFailed"
	ErrCampaignAborted = "CampaignAborted"
)

// Campaign rolls an image change across many services and environments, ring
// by ring: for each service and each ring environment where it is deployed, a
// child Rollout (the usual rollout ID) of the spec of its last deployment
// there with the image its channel names, at most a ring's parallel at a
// time. A ring starts once the one before is done, after its approval, and
// once the ring before's bake time passed. Failed rollouts spend the error
// budget; when it is spent the campaign halts — no new rollout starts, running
// ones finish on their own — until resume (which tries the ring's failed ones
// again) or abort. Long campaigns continue as new between rollouts, carrying
// their progress, so no rollout is done twice.
func Campaign(ctx workflow.Context, in contract.CampaignInput) (res contract.CampaignResult, err error) {
	c, err := newCampaign(ctx, in)
	if err != nil {
		return res, err
	}
	defer func() { err = c.finish(ctx, err); res = c.result }()

	if c.progress.Images == nil {
		if err := c.plan(ctx); err != nil {
			return c.result, err
		}
	}
	for c.progress.Ring < len(c.spec.Rings) {
		if err := c.ring(ctx, c.progress.Ring); err != nil {
			return c.result, err
		}
		c.progress.Ring++
	}
	return c.result, nil
}

type campaign struct {
	spec     contract.CampaignSpec
	in       contract.CampaignInput
	progress contract.CampaignProgress
	result   contract.CampaignResult

	running  int // child rollouts in flight
	settled  int // child rollouts that ended, this run
	approved *contract.Decision
	resumed  *contract.Decision
	stop     *contract.Decision
	// bakePlans are the rebuilds of a campaign that rebuilds on its base.
	bakePlans []contract.CampaignBakePlan
	tracker
}

func newCampaign(ctx workflow.Context, in contract.CampaignInput) (*campaign, error) {
	c := &campaign{spec: in.Spec, in: in}
	c.tracker = newTracker(ctx, &c.progress.Story, trackedKind{
		noun: "campaign", phaseEvent: contract.EventCampaignPhase, finishedEvent: contract.EventCampaignFinished,
		describe: c.describe, outcome: CampaignOutcome, details: c.details,
		failed: func() string { return "campaign " + c.spec.Name }, failType: ErrCampaignFailed,
	})
	if in.Progress != nil {
		c.progress = *in.Progress
	} else {
		c.progress = contract.CampaignProgress{Name: in.Spec.Name, StartedBy: in.StartedBy, StartedAt: workflow.Now(ctx),
			Rings: []contract.RingStatus{}}
	}
	c.progress.Runs++
	if err := workflow.SetQueryHandler(ctx, contract.QueryProgress, func() (contract.CampaignProgress, error) { return c.progress, nil }); err != nil {
		return nil, err
	}
	return c, c.registerUpdates(ctx)
}

// plan resolves each service's image and where it is deployed, and lays out
// every ring's rollouts.
func (c *campaign) plan(ctx workflow.Context) error {
	var envs []string
	for _, r := range c.spec.Rings {
		envs = append(envs, r.Environments...)
	}
	what := "channel " + c.spec.Image.Channel
	if c.spec.Rebuilds() {
		what = "the bake specs"
	}
	c.setPhase(ctx, contract.PhaseResolving, fmt.Sprintf("resolving %s of %s", what, c.selected()))
	var out contract.CampaignPlanResult
	if err := workflow.ExecuteActivity(quickOptions(ctx, "plan campaign "+c.spec.Name), contract.ActivityCampaignPlan,
		contract.CampaignPlanInput{Services: c.spec.Services, Select: c.spec.Select, Image: c.spec.Image, Environments: envs, Rebuild: c.spec.Rebuilds()}).Get(ctx, &out); err != nil {
		return c.fail("resolving its images", err)
	}
	if c.spec.Rebuilds() && workflow.GetVersion(ctx, campaignRebuild, workflow.DefaultVersion, 1) >= 1 {
		if err := c.rebuild(ctx, out.Bakes); err != nil {
			return err
		}
		out.Images = c.rebuilt()
	}
	services := out.Services
	if len(services) == 0 {
		services = c.spec.Services
	}
	if c.spec.Select != nil {
		c.event(ctx, fmt.Sprintf("selected %d services: %s", len(services), strings.Join(services, ", ")))
	}
	c.progress.Images = out.Images
	c.progress.Rings = make([]contract.RingStatus, len(c.spec.Rings))
	for i, r := range c.spec.Rings {
		rs := contract.RingStatus{Environments: r.Environments, State: contract.RingPending, Targets: []contract.CampaignTarget{}}
		for _, env := range r.Environments {
			for _, svc := range services {
				if !slices.Contains(out.Deployed[svc], env) {
					continue // the service is not deployed there
				}
				t := contract.CampaignTarget{Service: svc, Environment: env, ImageID: out.Images[svc], State: contract.TargetPending}
				switch failed := c.bakeFailed(svc); {
				case failed != "":
					t.State, t.Error = contract.TargetSkipped, failed
				case out.Live[svc+"/"+env] == t.ImageID:
					t.State = contract.TargetUnchanged
				}
				rs.Targets = append(rs.Targets, t)
			}
		}
		c.progress.Rings[i] = rs
	}
	c.progress.Budget = c.budget()
	c.event(ctx, fmt.Sprintf("%d rollouts in %d rings; the error budget halts it after %d failed", c.total(), len(c.spec.Rings), c.progress.Budget))
	return nil
}

// ring runs ring i: its gate, its rollouts, then its bake time.
func (c *campaign) ring(ctx workflow.Context, i int) error {
	r, rs := c.spec.Rings[i], &c.progress.Rings[i]
	if rs.State == contract.RingPending {
		if r.Approval.Required {
			if err := c.gate(ctx, i); err != nil {
				return err
			}
		}
		c.skipFailedEarlier(ctx, i)
		rs.State = contract.RingRunning
	}
	if rs.State == contract.RingRunning {
		c.setPhase(ctx, contract.PhaseRollingOut, fmt.Sprintf("ring %d/%d (%s): %d rollouts, %d at a time",
			i+1, len(c.spec.Rings), strings.Join(r.Environments, ", "), c.count(i, contract.TargetPending), r.Parallel))
		if err := c.rollRing(ctx, i); err != nil {
			return err
		}
		rs.State = contract.RingBaking
	}
	if d := r.BakeTime.D(); d > 0 && i+1 < len(c.spec.Rings) {
		c.setPhase(ctx, contract.PhaseBakeTime, fmt.Sprintf("ring %d done; bake time %s before ring %d", i+1, d, i+2))
		if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: d, TimerOptions: workflow.TimerOptions{Summary: fmt.Sprintf("bake time of ring %d", i+1)}},
			func() bool { return c.stop != nil }); err != nil {
			return err
		}
		if err := c.aborted(ctx, i+1); err != nil {
			return err
		}
	}
	rs.State = contract.RingDone
	return nil
}

// rollRing starts ring i's pending rollouts, at most parallel at a time, and
// returns when every one ended; a spent budget halts it, an abort stops it, a
// long history continues it as new.
func (c *campaign) rollRing(ctx workflow.Context, i int) error {
	for {
		if c.stop != nil {
			if err := workflow.Await(ctx, func() bool { return c.running == 0 }); err != nil {
				return err
			}
			return c.aborted(ctx, i)
		}
		if c.spent() {
			if err := c.halt(ctx, i); err != nil {
				return err
			}
			continue
		}
		next := c.next(i)
		if next < 0 && c.running == 0 {
			return nil
		}
		if next >= 0 && c.running < c.spec.Rings[i].Parallel {
			if c.continueAsNew(ctx) {
				if err := workflow.Await(ctx, func() bool { return c.running == 0 }); err != nil {
					return err
				}
				return c.continued(ctx)
			}
			c.start(ctx, i, next)
			continue
		}
		seen := c.settled
		if err := workflow.Await(ctx, func() bool { return c.settled != seen || c.stop != nil }); err != nil {
			return err
		}
	}
}

// next is the index of ring i's first pending rollout, -1 when none is.
func (c *campaign) next(i int) int {
	for j, t := range c.progress.Rings[i].Targets {
		if t.State == contract.TargetPending {
			return j
		}
	}
	return -1
}

// start starts rollout j of ring i; it settles on its own.
func (c *campaign) start(ctx workflow.Context, i, j int) {
	t := &c.progress.Rings[i].Targets[j]
	t.State, t.Error = contract.TargetRunning, ""
	t.Attempts++
	c.running++
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() { c.running--; c.settled++ }()
		err := c.roll(ctx, t)
		if err != nil {
			t.State, t.Error = contract.TargetFailed, reason(err)
			c.progress.Failed++
			c.event(ctx, fmt.Sprintf("%s → %s failed: %s", t.Service, t.Environment, t.Error))
			return
		}
		t.State = contract.TargetSucceeded
		c.event(ctx, fmt.Sprintf("%s → %s: %s is live", t.Service, t.Environment, t.ImageID))
	})
}

// roll rolls one target out: the spec of its last deployment with the
// campaign's image and override, as a child rollout.
func (c *campaign) roll(ctx workflow.Context, t *contract.CampaignTarget) error {
	var out contract.CampaignRolloutSpecResult
	if err := workflow.ExecuteActivity(quickOptions(ctx, "rollout spec of "+t.Service+" in "+t.Environment), contract.ActivityCampaignSpec,
		contract.CampaignRolloutSpecInput{Service: t.Service, Environment: t.Environment, ImageID: t.ImageID, Override: c.spec.Override}).Get(ctx, &out); err != nil {
		return err
	}
	var r contract.Rollout
	if err := json.Unmarshal(out.Spec, &r); err != nil {
		return temporal.NewNonRetryableApplicationError("the rollout spec does not decode: "+err.Error(), ErrCampaignFailed, nil)
	}
	opts := rolloutChildOptions(r, c.by(), "campaign "+c.spec.Name)
	child := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), Rollout,
		contract.RolloutInput{Spec: r, StartedBy: c.by(), Action: "rollout"})
	var exec workflow.Execution
	if err := child.GetChildWorkflowExecution().Get(ctx, &exec); err != nil {
		return err
	}
	t.RolloutID, t.RunID = exec.ID, exec.RunID
	return child.Get(ctx, nil)
}

// budget is how many failed rollouts halt the campaign: maxFailed, or
// maxFailedPercent of its rollouts (at least one), whichever is fewer; with
// neither, one.
func (c *campaign) budget() int { return c.budgetOf(c.total()) }

// budgetOf is the budget of total rollouts (or bakes).
func (c *campaign) budgetOf(total int) int {
	b := c.spec.ErrorBudget
	n := 0
	if b.MaxFailed > 0 {
		n = b.MaxFailed
	}
	if b.MaxFailedPercent > 0 {
		p := max(1, total*b.MaxFailedPercent/100)
		if n == 0 || p < n {
			n = p
		}
	}
	if n == 0 {
		n = 1
	}
	return n
}

// spent: the failures since the last resume reached the budget.
func (c *campaign) spent() bool {
	return c.progress.Failed-c.progress.BudgetBase >= c.progress.Budget
}

// halt waits, with the budget spent, for resume or abort; running rollouts
// finish on their own meanwhile. Resume tries ring i's failed rollouts again
// and gives the budget anew.
func (c *campaign) halt(ctx workflow.Context, i int) error {
	rs := &c.progress.Rings[i]
	rs.State = contract.RingHalted
	return c.halted(ctx, fmt.Sprintf("in ring %d: %d rollouts failed", i+1, c.progress.Failed-c.progress.BudgetBase), func() {
		retry := 0
		for j := range rs.Targets {
			if t := &rs.Targets[j]; t.State == contract.TargetFailed {
				t.State = contract.TargetPending
				retry++
			}
		}
		rs.State = contract.RingRunning
		c.setPhase(ctx, contract.PhaseRollingOut, fmt.Sprintf("resumed by %s%s: ring %d goes on, %d failed rollouts tried again",
			c.resumed.By, because(c.resumed.Reason), i+1, retry))
	})
}

// halted waits, the budget spent where says, for resume or abort; running
// rollouts (or bakes) finish on their own meanwhile. On resume, once none
// runs, it gives the budget anew and calls resume, which tries the failed
// ones again.
func (c *campaign) halted(ctx workflow.Context, where string, resume func()) error {
	c.progress.Halted, c.resumed = true, nil
	c.setPhase(ctx, contract.PhaseHalted, fmt.Sprintf("halted %s, the error budget (%d) is spent; no new rollout starts (imago campaign resume|abort %s)",
		where, c.progress.Budget, c.spec.Name))
	if err := workflow.Await(ctx, func() bool { return c.resumed != nil || c.stop != nil }); err != nil {
		return err
	}
	c.progress.Halted = false
	if c.stop != nil {
		return nil // the caller sees the stop
	}
	if err := workflow.Await(ctx, func() bool { return c.running == 0 || c.stop != nil }); err != nil {
		return err
	}
	c.progress.Resumes = append(c.progress.Resumes, *c.resumed)
	c.progress.BudgetBase = c.progress.Failed
	resume()
	return nil
}

// skipFailedEarlier skips ring i's rollouts of services that failed in an
// earlier ring: what failed in staging does not go to prod.
func (c *campaign) skipFailedEarlier(ctx workflow.Context, i int) {
	failed := map[string]int{}
	for k := 0; k < i; k++ {
		for _, t := range c.progress.Rings[k].Targets {
			if t.State == contract.TargetFailed {
				failed[t.Service] = k + 1
			}
		}
	}
	for j := range c.progress.Rings[i].Targets {
		t := &c.progress.Rings[i].Targets[j]
		if k, ok := failed[t.Service]; ok && t.State == contract.TargetPending {
			t.State, t.Error = contract.TargetSkipped, fmt.Sprintf("failed in ring %d", k)
			c.event(ctx, fmt.Sprintf("%s → %s skipped: it failed in ring %d", t.Service, t.Environment, k))
		}
	}
}

// gate holds ring i until approve, abort or the timeout.
func (c *campaign) gate(ctx workflow.Context, i int) error {
	r, rs := c.spec.Rings[i], &c.progress.Rings[i]
	c.progress.Gate, c.approved = fmt.Sprintf("ring %d: %s", i+1, strings.Join(r.Environments, ", ")), nil
	rs.State = contract.RingWaiting
	defer func() { c.progress.Gate = "" }()
	c.setPhase(ctx, contract.PhaseAwaitingApproval, fmt.Sprintf("waiting for approval of %s (imago campaign approve %s), at most %s", c.progress.Gate, c.spec.Name, r.Approval.Timeout))
	ok, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: r.Approval.Timeout.D(), TimerOptions: workflow.TimerOptions{Summary: "approval of ring " + fmt.Sprint(i+1)}},
		func() bool { return c.approved != nil || c.stop != nil })
	if err != nil {
		return err
	}
	if err := c.aborted(ctx, i); err != nil {
		return err
	}
	if !ok {
		c.markNotStarted(i)
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("campaign %s stopped: nobody approved ring %d within %s", c.spec.Name, i+1, r.Approval.Timeout), ErrCampaignAborted, nil)
	}
	rs.Approval = c.approved
	return nil
}

// aborted ends the campaign when an abort was asked: ring from's pending
// rollouts and the later rings are not started.
func (c *campaign) aborted(ctx workflow.Context, from int) error {
	if c.stop == nil {
		return nil
	}
	c.markNotStarted(from)
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("campaign %s aborted by %s%s", c.spec.Name, c.stop.By, because(c.stop.Reason)), ErrCampaignAborted, nil)
}

func (c *campaign) markNotStarted(from int) {
	for k := from; k < len(c.progress.Rings); k++ {
		rs := &c.progress.Rings[k]
		if rs.State != contract.RingDone && rs.State != contract.RingBaking {
			rs.State = contract.RingNotStart
		}
		for j := range rs.Targets {
			if t := &rs.Targets[j]; t.State == contract.TargetPending {
				t.State = contract.TargetSkipped
			}
		}
	}
}

// continueAsNew tells whether the history is long enough to go on in a new run.
func (c *campaign) continueAsNew(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	limit := c.in.MaxEvents
	if limit <= 0 {
		limit = contract.DefaultCampaignMaxEvents
	}
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= limit
}

// continued goes on in a new run with the progress so far (no rollout runs now).
func (c *campaign) continued(ctx workflow.Context) error {
	c.event(ctx, fmt.Sprintf("continuing as new after %d events (run %d)", workflow.GetInfo(ctx).GetCurrentHistoryLength(), c.progress.Runs))
	next := c.in
	p := c.progress
	next.Progress = &p
	return workflow.NewContinueAsNewError(ctx, Campaign, next)
}

// registerUpdates installs approve (releases the open ring gate), resume (a
// halted campaign goes on) and abort (no new rollout starts; running ones
// finish on their own, then it ends).
func (c *campaign) registerUpdates(ctx workflow.Context) error {
	return c.setDecisionUpdates(ctx,
		decisionUpdate{contract.UpdateApprove, func(contract.DecisionInput) error {
			if c.progress.Gate == "" {
				return fmt.Errorf("nothing waits for approval: the campaign is %s", c.progress.Phase)
			}
			return nil
		}, func(ctx workflow.Context, in contract.DecisionInput) {
			c.approved = decide(ctx, in)
			c.event(ctx, fmt.Sprintf("%s approved by %s%s", c.progress.Gate, in.By, because(in.Reason)))
		}},
		decisionUpdate{contract.UpdateResume, func(contract.DecisionInput) error {
			if !c.progress.Halted || c.resumed != nil {
				return fmt.Errorf("the campaign is not halted: it is %s", c.progress.Phase)
			}
			return nil
		}, func(ctx workflow.Context, in contract.DecisionInput) {
			c.resumed = decide(ctx, in)
			c.event(ctx, fmt.Sprintf("resume requested by %s%s", in.By, because(in.Reason)))
		}},
		decisionUpdate{contract.UpdateAbort, func(contract.DecisionInput) error {
			if c.stop != nil {
				return fmt.Errorf("an abort was already requested by %s", c.stop.By)
			}
			return nil
		}, func(ctx workflow.Context, in contract.DecisionInput) {
			c.stop = decide(ctx, in)
			c.event(ctx, fmt.Sprintf("abort requested by %s%s: no new rollout starts; %d running finish on their own", in.By, because(in.Reason), c.running))
		}},
	)
}

func (c *campaign) finish(ctx workflow.Context, err error) error {
	if workflow.IsContinueAsNewError(err) {
		return err
	}
	c.result.Rings = c.progress.Rings
	for _, rs := range c.progress.Rings {
		for _, t := range rs.Targets {
			switch t.State {
			case contract.TargetSucceeded:
				c.result.Succeeded++
			case contract.TargetFailed:
				c.result.Failed++
			case contract.TargetUnchanged:
				c.result.Unchanged++
			case contract.TargetSkipped:
				c.result.Skipped++
			}
		}
	}
	counts := fmt.Sprintf("%d succeeded, %d failed, %d unchanged, %d skipped",
		c.result.Succeeded, c.result.Failed, c.result.Unchanged, c.result.Skipped)
	if err == nil {
		c.result.Reason = fmt.Sprintf("campaign %s done: %s", c.spec.Name, counts)
		c.setPhase(ctx, contract.PhaseSucceeded, c.result.Reason)
		return nil
	}
	c.progress.Error = reason(err)
	c.result.Reason = c.progress.Error + " (" + counts + ")"
	c.setPhase(ctx, CampaignEnd(err), c.result.Reason)
	return err
}

func (c *campaign) total() int {
	n := 0
	for _, rs := range c.progress.Rings {
		for _, t := range rs.Targets {
			if t.State != contract.TargetUnchanged {
				n++
			}
		}
	}
	return n
}

func (c *campaign) count(i int, s contract.TargetState) int {
	n := 0
	for _, t := range c.progress.Rings[i].Targets {
		if t.State == s {
			n++
		}
	}
	return n
}

// selected says which services the campaign rolls, as its spec says it.
func (c *campaign) selected() string {
	if s := c.spec.Select; s != nil {
		return "the " + s.String()
	}
	return fmt.Sprintf("%d services", len(c.spec.Services))
}

func (c *campaign) by() string {
	if c.in.StartedBy != "" {
		return "campaign " + c.spec.Name + " (" + c.in.StartedBy + ")"
	}
	return "campaign " + c.spec.Name
}

// details are the rings, one line each, in the UI's current details.
func (c *campaign) details() string {
	var b strings.Builder
	if len(c.progress.Bakes) > 0 {
		states, cached := map[contract.TargetState]int{}, 0
		for _, bk := range c.progress.Bakes {
			states[bk.State]++
			if bk.Cached {
				cached++
			}
		}
		fmt.Fprintf(&b, "\n\nrebuild: %d succeeded (%d cache hits), %d running, %d failed, %d pending", states[contract.TargetSucceeded], cached,
			states[contract.TargetRunning], states[contract.TargetFailed], states[contract.TargetPending])
	}
	for i, rs := range c.progress.Rings {
		states := map[contract.TargetState]int{}
		for _, t := range rs.Targets {
			states[t.State]++
		}
		fmt.Fprintf(&b, "\n\nring %d (%s): %s — %d succeeded, %d running, %d failed, %d pending", i+1,
			strings.Join(rs.Environments, ", "), rs.State, states[contract.TargetSucceeded], states[contract.TargetRunning],
			states[contract.TargetFailed], states[contract.TargetPending])
	}
	return b.String()
}

// describe is the campaign as its phase events say it.
func (c *campaign) describe() (subject string, data contract.EventData, failure string) {
	return contract.CampaignWorkflowID(c.spec.Name), contract.EventData{StartedBy: c.progress.StartedBy}, c.progress.Error
}
