package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/contract"
)

// canaryBaselineChange is the workflow change that starts a baseline fleet
// beside a canary whose spec asks for one (strategy.baseline). Only such
// specs ask for it; runs of other specs roll as they always did.
const canaryBaselineChange = "canary-baseline"

// baselineRun is a canary's baseline fleet: the live image, the canary's size,
// the canary's share of traffic, for a compare analysis to judge against.
type baselineRun struct {
	live    string // the previous route's fleet it copies
	token   string // its provision token: the undo tears down what it made
	fleetID string // once provisioned
	gone    bool   // torn down
}

// checkBaseline, for a canary with a baseline, finds the fleet it copies: the
// previous route's fleet with the most traffic. Nothing live is a failure
// before anything is made.
func (r *rollout) checkBaseline(ctx workflow.Context, prev contract.Route) error {
	if !r.spec.Strategy.Baseline || workflow.GetVersion(ctx, canaryBaselineChange, workflow.DefaultVersion, 1) < 1 {
		return nil
	}
	live := liveFleet(prev)
	if live == "" {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"rollout %s failed: strategy.baseline: nothing is live on %s to start a baseline fleet from (no fleet takes traffic); "+
				"roll out without baseline first; nothing was changed", r.id(), r.key), ErrRolloutFailed, nil)
	}
	r.baseline = &baselineRun{live: live}
	return nil
}

// liveFleet is the fleet of route with the most weight (the first of equals);
// "" when none has any.
func liveFleet(route contract.Route) string {
	best, weight := "", 0
	for _, b := range route.Backends {
		if b.Weight > weight {
			best, weight = b.FleetID, b.Weight
		}
	}
	return best
}

// startBaseline provisions the baseline fleet from the live fleet's image,
// as many instances as the canary, and waits for it to be healthy. It takes
// no traffic until the first setWeight.
func (r *rollout) startBaseline(ctx workflow.Context) error {
	b := r.baseline
	if b == nil {
		return nil
	}
	var live contract.FleetImageResult
	err := workflow.ExecuteActivity(quickOptions(ctx, "image of live fleet "+b.live), contract.ActivityFleetImage,
		contract.FleetImageInput{FleetID: b.live}).Get(ctx, &live)
	if err != nil {
		return r.fail("reading the live fleet's image for the baseline", err)
	}
	size := r.spec.Fleet.Size
	// Part of the canary: its phase, with the step saying what it does.
	r.progress.Step = "baseline"
	r.setPhase(ctx, contract.PhaseCanary, fmt.Sprintf("provisioning the baseline: %d instances of %s, the image of live fleet %s", size, live.ImageID, b.live))
	req := r.provisionRequest(ctx, live.ImageID, size, "/baseline", map[string]string{contract.LabelRole: contract.LabelRoleBaseline})
	b.token = req.Token
	fleet, err := r.runProvision(ctx, req, true)
	if err != nil {
		return r.fail("provisioning the baseline fleet", err)
	}
	b.fleetID = fleet.ID
	r.progress.BaselineFleet = fleet.ID
	r.event(ctx, fmt.Sprintf("baseline fleet %s provisioned with %d instances of %s", fleet.ID, len(fleet.Instances), live.ImageID))
	r.event(ctx, fmt.Sprintf("waiting for the baseline's %d instances to pass %s", len(fleet.Instances), r.spec.Health.Path))
	return r.awaitHealthy(ctx, contract.WaitHealthyInput{FleetID: fleet.ID}, "waiting for the baseline fleet to become healthy")
}

// shares is the route that gives fleetID weight percent and the rest to
// prev's fleets (split), with the baseline's share (splitBaseline) while a
// baseline runs.
func (r *rollout) shares(prev []contract.FleetShare, fleetID string, weight int) []contract.FleetShare {
	if b := r.baseline; b != nil && b.fleetID != "" && !b.gone {
		return splitBaseline(prev, fleetID, b.fleetID, weight)
	}
	return split(prev, contract.FleetShare{FleetID: fleetID, Weight: weight})
}

// stopBaseline tears the baseline fleet down: at cutover (the canary takes
// everything, the baseline nothing), or, on a compensation context, when the
// rollout is undone (after the previous route is back). A baseline that
// cannot be torn down is said in the events; the reaper terminates it once
// the rollout has ended.
func (r *rollout) stopBaseline(ctx workflow.Context) {
	b := r.baseline
	if b == nil || b.token == "" || b.gone {
		return
	}
	what := b.fleetID
	if what == "" {
		what = "the baseline of provision " + b.token
	}
	var gone []string
	err := workflow.ExecuteActivity(terminateOptions(ctx, "tear down baseline "+what), contract.ActivityTerminateByToken,
		contract.TerminateByTokenInput{Token: b.token, Service: r.spec.Service, Environment: r.spec.Environment}).Get(ctx, &gone)
	if err != nil {
		r.event(ctx, fmt.Sprintf("could not tear down baseline fleet %s: %s; the reaper terminates it once this rollout has ended", what, reason(err)))
		return
	}
	b.gone = true
	for _, id := range gone {
		r.event(ctx, "tore down baseline fleet "+id)
	}
}
