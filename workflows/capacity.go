package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/contract"
)

// capacityBudgetChange is the workflow change that runs rolling rollouts with
// a capacity budget (strategy.maxSurge, maxUnavailable, minHealthyPercent) by
// budget steps. Only specs that set a budget ask for it; runs of specs
// without one roll as they always did.
const capacityBudgetChange = "capacity-budget"

// budgetRun is a rolling rollout under a capacity budget as it goes.
type budgetRun struct {
	plan  budget
	old   *contract.FleetShare // the single old fleet; nil when there is none
	steps int                  // how many steps, for people
	first budgetStep           // the step provision makes
}

// startBudget decides whether this rolling rollout runs by budget and, if
// so, makes room for its first step: provision asks it how many instances to
// make. prev is the route before the rollout.
func (r *rollout) startBudget(ctx workflow.Context, prev contract.Route, wave int) (size int, ok bool, err error) {
	s := r.spec.Strategy
	if !s.Budgeted() || !r.byCount || workflow.GetVersion(ctx, capacityBudgetChange, workflow.DefaultVersion, 1) < 1 {
		return 0, false, nil
	}
	c, err := s.Capacity(r.spec.Fleet.Size)
	if err != nil { // Normalize refused it already: the worker's spec is the starter's
		return 0, false, r.fail("reading the capacity budget", err)
	}
	b := &budgetRun{plan: budget{size: c.Size, surge: c.Surge, unavailable: c.Unavailable, wave: wave}}
	oldN := 0
	switch olds := sharesOf(prev); len(olds) {
	case 0: // nothing serves yet: nothing to keep serving
	case 1:
		b.old = &olds[0]
		oldN = len(prev.Backends[0].Targets)
		b.old.Instances = oldN
	default:
		// A route split by hand: the old fleets keep their size and share, as
		// in a rolling rollout without a budget, which this one becomes.
		r.event(ctx, fmt.Sprintf("capacity budget not applied: the route splits traffic between %d fleets %v; rolling in waves of %d", len(olds), prev.FleetIDs(), wave))
		return 0, false, nil
	}
	b.steps = len(b.plan.steps(oldN))
	b.first = b.plan.step(0, oldN)
	r.budget = b
	r.event(ctx, fmt.Sprintf("capacity budget: at most %d instances run (%d + maxSurge %d), at least %d serve (%d − maxUnavailable %d); %d steps",
		c.Size+c.Surge, c.Size, c.Surge, c.Size-c.Unavailable, c.Size, c.Unavailable, b.steps))
	if err := r.shrinkOld(ctx, "", 0, b.first.OldBefore); err != nil {
		return 0, true, err
	}
	return b.first.New, true, nil
}

// shrinkOld routes the old fleet's share to its first keep instances (the new
// fleet keeping weight), then shrinks the old fleet to keep: no request goes
// to an instance that is going away.
func (r *rollout) shrinkOld(ctx workflow.Context, fleetID string, weight, keep int) error {
	old := r.budget.old
	if old == nil || keep >= old.Instances {
		return r.stopped()
	}
	shares := []contract.FleetShare{{FleetID: old.FleetID, Weight: 100, Instances: keep}}
	if fleetID == "" {
		// Before provisioning (the windows and freezes were waited for
		// already): no new fleet takes traffic, no traffic increase to confirm.
		if err := r.setRoute(ctx, shares, 0); err != nil {
			return err
		}
	} else if err := r.routeTo(ctx, shares, fleetID, weight); err != nil {
		return err
	}
	return r.resizeOld(ctx, keep)
}

// resizeOld shrinks the old fleet to keep instances, which the route sends to
// already; revert grows it back.
func (r *rollout) resizeOld(ctx workflow.Context, keep int) error {
	old := r.budget.old
	if old == nil || keep >= old.Instances {
		return r.stopped()
	}
	if r.shrunk == nil {
		r.shrunk = map[string]int{old.FleetID: old.Instances}
	}
	if _, err := r.resize(ctx, old.FleetID, keep); err != nil {
		return err
	}
	old.Instances = keep
	return nil
}

// rollingByBudget replaces the old fleet step by step within the budget: each
// step shrinks the old fleet first when the surge leaves no room (never below
// the floor), grows the new fleet, waits for its new instances and checks
// them, shifts traffic in proportion to the serving instances and shrinks
// the old fleet behind it.
func (r *rollout) rollingByBudget(ctx workflow.Context, prev contract.Route, fleet contract.Fleet) (contract.Fleet, error) {
	b := r.budget
	defer func() { r.waving = false }()
	oldN := 0
	if b.old != nil {
		oldN = b.old.Instances
	}
	newN := len(fleet.Instances)
	st := b.first
	for n := 1; ; n++ {
		if n > 1 {
			st = b.plan.step(newN, oldN)
			if err := r.shrinkOld(ctx, fleet.ID, st.WeightBefore, st.OldBefore); err != nil {
				return fleet, err
			}
			if _, err := r.resize(ctx, fleet.ID, st.New); err != nil {
				return fleet, err
			}
			if err := r.waitHealthy(ctx, fleet.ID, newN, st.New); err != nil {
				return fleet, err
			}
			if err := r.validate(ctx, fleet.ID, newN); err != nil {
				return fleet, err
			}
		}
		step := fmt.Sprintf("step %d of %d: %d of %d new instances take %d%%, %d old ones serve the rest", n, b.steps, st.New, b.plan.size, st.Weight, st.OldAfter)
		if r.waving {
			r.waveStep(ctx, step)
		} else {
			r.progress.Step = step
			r.setPhase(ctx, contract.PhaseRolling, step)
			r.waving = true
		}
		next := sharesOf(prev) // several old fleets keep their size and share
		if b.old != nil {
			next = []contract.FleetShare{{FleetID: b.old.FleetID, Weight: 100, Instances: st.OldAfter}}
		}
		if err := r.routeTo(ctx, next, fleet.ID, st.Weight); err != nil {
			return fleet, err
		}
		if st.New >= b.plan.size {
			return fleet, nil
		}
		if err := r.resizeOld(ctx, st.OldAfter); err != nil {
			return fleet, err
		}
		newN, oldN = st.New, st.OldAfter
	}
}

// canaryMinHealthyChange is the workflow change that checks a canary's new
// fleet against strategy.minHealthyPercent before each traffic increase. Only
// canaries that set it ask for it.
const canaryMinHealthyChange = "canary-min-healthy"

// minHealthy, before a canary gives the new fleet weight percent, waits (up
// to the health timeout) for minHealthyPercent of its instances to pass the
// health probe: traffic never moves onto a fleet with fewer healthy
// instances, as an ASG instance refresh never goes below its
// MinHealthyPercentage. The old fleet keeps all its instances throughout a
// canary. A fleet that does not get there fails the rollout, which routes
// traffic back to the old fleet.
func (r *rollout) minHealthy(ctx workflow.Context, fleet contract.Fleet, weight int) error {
	p := r.spec.Strategy.MinHealthyPercent
	if p == nil || *p == 0 || workflow.GetVersion(ctx, canaryMinHealthyChange, workflow.DefaultVersion, 1) < 1 {
		return nil
	}
	need := (r.spec.Fleet.Size**p + 99) / 100
	err := r.awaitHealthy(ctx, contract.WaitHealthyInput{FleetID: fleet.ID, AtLeast: need},
		fmt.Sprintf("checking that %d of %s's instances (minHealthyPercent %d) pass %s before %d%% of traffic", need, fleet.ID, *p, r.spec.Health.Path, weight))
	return err
}
