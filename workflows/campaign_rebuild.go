package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/contract"
)

// campaignRebuild is the workflow change that lets a campaign selecting by
// base rebuild each service on it (child Bake workflows) before its rings.
const campaignRebuild = "campaign-rebuild"

// rebuild bakes each service on the campaign's base, level by level (a service
// built on another one the campaign rebuilds bakes after it), at most the
// first ring's parallel at a time. Each bake is the usual Bake workflow, so
// the bake cache makes a repeat a no-op. A failed bake spends the error
// budget as a failed rollout does: when it is spent the campaign halts until
// resume (which bakes the failed ones again) or abort.
func (c *campaign) rebuild(ctx workflow.Context, plans []contract.CampaignBakePlan) error {
	c.bakePlans = plans
	c.progress.Bakes = make([]contract.CampaignBake, len(plans))
	for k, p := range plans {
		c.progress.Bakes[k] = contract.CampaignBake{Service: p.Service, Level: p.Level, State: contract.TargetPending}
		if p.Spec == nil {
			c.progress.Bakes[k].State, c.progress.Bakes[k].Error = contract.TargetFailed, p.Error
			c.progress.Failed++
			c.event(ctx, fmt.Sprintf("%s cannot be rebuilt: %s", p.Service, p.Error))
		}
	}
	c.progress.Budget = c.budgetOf(len(plans))
	parallel := c.spec.Rings[0].Parallel
	c.setPhase(ctx, contract.PhaseBaking, fmt.Sprintf("rebuilding %d services on %s/%s, %d at a time",
		len(plans), c.spec.Select.Base.Service, c.spec.Select.Base.Channel, parallel))
	for {
		if c.stop != nil {
			if err := workflow.Await(ctx, func() bool { return c.running == 0 }); err != nil {
				return err
			}
			for k := range c.progress.Bakes {
				if b := &c.progress.Bakes[k]; b.State == contract.TargetPending {
					b.State = contract.TargetSkipped
				}
			}
			return c.aborted(ctx, 0)
		}
		if c.spent() {
			if err := c.haltBakes(ctx); err != nil {
				return err
			}
			continue
		}
		next := c.nextBake()
		if next < 0 && c.running == 0 {
			return nil
		}
		if next >= 0 && c.running < parallel {
			c.startBake(ctx, next)
			continue
		}
		seen := c.settled
		if err := workflow.Await(ctx, func() bool { return c.settled != seen || c.stop != nil }); err != nil {
			return err
		}
	}
}

// nextBake is the first pending bake of the lowest level not done (a bake
// waits for those of lower levels), -1 when none is.
func (c *campaign) nextBake() int {
	level := -1
	for _, b := range c.progress.Bakes {
		if (b.State == contract.TargetPending || b.State == contract.TargetRunning) && (level < 0 || b.Level < level) {
			level = b.Level
		}
	}
	for k, b := range c.progress.Bakes {
		if b.State == contract.TargetPending && b.Level == level {
			return k
		}
	}
	return -1
}

// startBake starts bake k as a child Bake workflow; it settles on its own.
func (c *campaign) startBake(ctx workflow.Context, k int) {
	b, spec := &c.progress.Bakes[k], *c.bakePlans[k].Spec
	b.State, b.Error = contract.TargetRunning, ""
	b.Attempts++
	c.running++
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() { c.running--; c.settled++ }()
		opts := bakeChildOptions(spec, c.by(), "campaign "+c.spec.Name)
		child := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), Bake, contract.BakeInput{Spec: spec, StartedBy: c.by()})
		var exec workflow.Execution
		err := child.GetChildWorkflowExecution().Get(ctx, &exec)
		var res contract.BakeResult
		if err == nil {
			b.BakeID, b.RunID = exec.ID, exec.RunID
			err = child.Get(ctx, &res)
		}
		if err != nil {
			b.State, b.Error = contract.TargetFailed, reason(err)
			c.progress.Failed++
			c.event(ctx, fmt.Sprintf("bake of %s failed: %s", b.Service, b.Error))
			return
		}
		b.State, b.ImageID, b.Cached = contract.TargetSucceeded, res.ImageID, res.Cached
		how := "built"
		if res.Cached {
			how = "cache hit"
		}
		c.event(ctx, fmt.Sprintf("%s rebuilt on %s/%s: %s (%s)", b.Service, c.spec.Select.Base.Service, c.spec.Select.Base.Channel, res.ImageID, how))
	})
}

// haltBakes halts the rebuild, its budget spent; resume bakes the failed
// ones again.
func (c *campaign) haltBakes(ctx workflow.Context) error {
	return c.halted(ctx, fmt.Sprintf("rebuilding: %d bakes failed", c.progress.Failed-c.progress.BudgetBase), func() {
		retry := 0
		for k := range c.progress.Bakes {
			if b := &c.progress.Bakes[k]; b.State == contract.TargetFailed && c.bakePlans[k].Spec != nil {
				b.State = contract.TargetPending
				retry++
			}
		}
		c.setPhase(ctx, contract.PhaseBaking, fmt.Sprintf("resumed by %s%s: rebuilding goes on, %d failed bakes tried again",
			c.resumed.By, because(c.resumed.Reason), retry))
	})
}

// rebuilt is the image each service's bake made.
func (c *campaign) rebuilt() map[string]string {
	out := map[string]string{}
	for _, b := range c.progress.Bakes {
		if b.State == contract.TargetSucceeded {
			out[b.Service] = b.ImageID
		}
	}
	return out
}

// bakeFailed is why svc's rebuild failed, "" when it did not (or the campaign
// rebuilds nothing).
func (c *campaign) bakeFailed(svc string) string {
	for _, b := range c.progress.Bakes {
		if b.Service == svc && b.State != contract.TargetSucceeded {
			return "its bake failed: " + b.Error
		}
	}
	return ""
}
