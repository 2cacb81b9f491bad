package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/spec"
)

// shiftTraffic moves traffic to the new fleet by the spec's strategy and returns
// the new fleet as it ends (a rolling rollout grows it wave by wave).
func (r *rollout) shiftTraffic(ctx workflow.Context, prev provider.Route, fleet provider.Fleet) (provider.Fleet, error) {
	switch r.spec.Strategy.Type {
	case spec.Canary:
		return fleet, r.canary(ctx, prev, fleet)
	case spec.Rolling:
		return r.rolling(ctx, prev, fleet)
	}
	r.setPhase(ctx, PhaseCuttingOver, fmt.Sprintf("switching %s to %s", r.key, fleet.ID))
	return fleet, r.route(ctx, prev, fleet, 100)
}

// route sends weight percent of traffic to the new fleet and the rest to the
// previous route's fleets, in proportion to their weights there.
func (r *rollout) route(ctx workflow.Context, prev provider.Route, fleet provider.Fleet, weight int) error {
	if err := r.stopped(); err != nil {
		return err
	}
	if len(prev.Backends) == 0 {
		weight = 100 // nothing else to send traffic to
	}
	return r.setRoute(ctx, split(prev, provider.Backend{FleetID: fleet.ID, Weight: weight, Targets: fleet.Addresses()}), weight)
}

func (r *rollout) setRoute(ctx workflow.Context, next provider.Route, weight int) error {
	next.Listen = r.spec.Listen
	r.routeTouched = true
	var a *activities.Activities
	err := workflow.ExecuteActivity(quickOptions(ctx, fmt.Sprintf("route %d%% → %s", weight, r.progress.NewFleet)), a.SetRoute,
		activities.SetRouteInput{Key: r.key, Route: next, HealthPath: r.spec.Health.Path}).Get(ctx, nil)
	if err != nil {
		return r.fail("moving traffic", err)
	}
	r.progress.Weights = weights(next)
	r.event(ctx, fmt.Sprintf("%d%% of traffic on %s", weight, r.progress.NewFleet))
	return nil
}

// split gives the new backend its weight and shares the rest among prev's fleets.
func split(prev provider.Route, nb provider.Backend) provider.Route {
	out := provider.Route{Listen: prev.Listen}
	rest := 100 - nb.Weight
	total := 0
	for _, b := range prev.Backends {
		if b.FleetID != nb.FleetID {
			total += b.Weight
		}
	}
	given := 0
	var olds []provider.Backend
	for _, b := range prev.Backends {
		if b.FleetID == nb.FleetID || b.Weight == 0 {
			continue
		}
		w := 0
		if total > 0 {
			w = rest * b.Weight / total
		}
		given += w
		olds = append(olds, provider.Backend{FleetID: b.FleetID, Weight: w, Targets: b.Targets})
	}
	if len(olds) > 0 {
		olds[0].Weight += rest - given // rounding goes to the first old fleet
	}
	if nb.Weight > 0 || len(olds) == 0 {
		out.Backends = append(out.Backends, nb)
	}
	for _, b := range olds {
		if b.Weight > 0 {
			out.Backends = append(out.Backends, b)
		}
	}
	return out
}

// canary walks the steps: weights, pauses, analyses; then 100%.
func (r *rollout) canary(ctx workflow.Context, prev provider.Route, fleet provider.Fleet) error {
	steps := r.spec.Strategy.Steps
	for i, s := range steps {
		step := fmt.Sprintf("%d/%d", i+1, len(steps))
		switch {
		case s.SetWeight != nil:
			r.progress.Step = fmt.Sprintf("%s setWeight %d", step, *s.SetWeight)
			r.setPhase(ctx, PhaseCanary, fmt.Sprintf("step %s: %d%% to %s", step, *s.SetWeight, fleet.ID))
			if err := r.route(ctx, prev, fleet, *s.SetWeight); err != nil {
				return err
			}
		case s.Pause != nil:
			if err := r.pause(ctx, step, *s.Pause); err != nil {
				return err
			}
		case s.Analysis != "":
			r.progress.Step = fmt.Sprintf("%s analysis %s", step, s.Analysis)
			if err := r.analyze(ctx, s.Analysis, fleet); err != nil {
				return err
			}
		}
	}
	r.progress.Step = "done"
	r.setPhase(ctx, PhaseCuttingOver, fmt.Sprintf("canary steps done: 100%% to %s", fleet.ID))
	return r.route(ctx, prev, fleet, 100)
}

// pause holds traffic for a duration (promote skips it) or, indefinitely, until
// approve or promote.
func (r *rollout) pause(ctx workflow.Context, step string, p spec.Pause) error {
	if r.promoted {
		r.event(ctx, "pause "+step+" skipped: promoted")
		return r.stopped()
	}
	if p.Indefinite() {
		r.progress.Step = step + " pause (until approved)"
		return r.awaitApproval(ctx, PhasePaused, "pause "+step, r.spec.Approval.Timeout.D())
	}
	d := p.Duration.D()
	r.progress.Step = fmt.Sprintf("%s pause %s", step, d)
	r.setPhase(ctx, PhasePaused, fmt.Sprintf("step %s: holding for %s (promote skips it)", step, d))
	_, err := r.wait(ctx, d, "pause "+d.String(), func() bool { return r.promoted })
	return err
}

// analyze runs a named analysis against the new fleet. Failed rolls back at once;
// inconclusive waits for a person to approve (continue) or abort.
func (r *rollout) analyze(ctx workflow.Context, name string, fleet provider.Fleet) error {
	a := r.spec.Analyses[name]
	r.setPhase(ctx, PhaseAnalyzing, fmt.Sprintf("analysis %s: %s %s of %s, %d × every %s", name, a.Provider, a.Metric, fleet.ID, a.Count, a.Interval))
	heartbeat := 3 * a.Interval.D()
	if heartbeat < 10*time.Second {
		heartbeat = 10 * time.Second
	}
	attempt := time.Duration(a.Count+1)*a.Interval.D() + 2*time.Minute
	opts := workflow.ActivityOptions{
		StartToCloseTimeout:    attempt,
		HeartbeatTimeout:       heartbeat,
		ScheduleToCloseTimeout: 2 * attempt, // a retry resumes the measurements from the heartbeat
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second, MaximumAttempts: 5},
		Summary:                "analysis " + name + " on " + fleet.ID,
	}
	var act *activities.Activities
	var res activities.AnalysisResult
	err := r.interruptible(ctx, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), act.RunAnalysis,
			activities.AnalysisInput{Name: name, Spec: a.ToSpec(), Key: r.key, FleetID: fleet.ID}).Get(ctx, &res)
	})
	if err != nil {
		return r.fail("running analysis "+name, err)
	}
	r.progress.Analyses = append(r.progress.Analyses, AnalysisRun{Name: name, Phase: res.Phase, Message: res.Message})
	switch res.Phase {
	case activities.AnalysisSuccessful:
		r.event(ctx, fmt.Sprintf("analysis %s passed: %s", name, res.Message))
		return nil
	case activities.AnalysisInconclusive:
		r.event(ctx, fmt.Sprintf("analysis %s inconclusive: %s", name, res.Message))
		return r.awaitApproval(ctx, PhasePaused, "inconclusive analysis "+name, r.spec.Approval.Timeout.D())
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("rollout %s rolled back automatically: analysis %s failed: %s", r.id(), name, res.Message), ErrRolledBack, nil)
}

// interruptible runs fn on a context that an abort or rollback cancels, so a long
// activity (heartbeating) stops at once instead of at its end.
func (r *rollout) interruptible(ctx workflow.Context, fn func(workflow.Context) error) error {
	cctx, cancel := workflow.WithCancel(ctx)
	done := false
	workflow.Go(ctx, func(gctx workflow.Context) {
		_ = workflow.Await(gctx, func() bool { return done || r.stop != nil })
		cancel()
	})
	err := fn(cctx)
	done = true
	if serr := r.stopped(); serr != nil {
		return serr
	}
	return err
}

// rolling replaces the old fleet wave by wave: each wave grows the new fleet,
// checks it, shifts weight in proportion, and shrinks the old fleet to match.
func (r *rollout) rolling(ctx workflow.Context, prev provider.Route, fleet provider.Fleet) (provider.Fleet, error) {
	size := r.spec.Fleet.Size
	wave, _ := r.spec.Strategy.Waves.Size(size)
	var old *provider.Backend
	if len(prev.Backends) == 1 {
		b := prev.Backends[0] // a copy: shrinking it must not touch the route revert restores
		b.Targets = append([]string(nil), b.Targets...)
		old = &b
	}
	origOld := 0
	if old != nil {
		origOld = len(old.Targets)
	}
	placed := len(fleet.Instances)
	for n := 1; ; n++ {
		if placed > len(fleet.Instances) {
			var err error
			if fleet, err = r.resize(ctx, fleet.ID, placed); err != nil {
				return fleet, err
			}
			if err := r.waitHealthy(ctx, fleet); err != nil {
				return fleet, err
			}
			if err := r.validate(ctx, fleet); err != nil {
				return fleet, err
			}
		}
		weight := placed * 100 / size
		r.progress.Step = fmt.Sprintf("wave %d: %d/%d instances", n, placed, size)
		r.setPhase(ctx, PhaseRolling, fmt.Sprintf("wave %d: %d of %d new instances take %d%%", n, placed, size, weight))
		next := prev
		if old != nil && weight < 100 {
			// The old fleet gives up the share the new fleet took, keeping at least one.
			keep := max(origOld-placed*origOld/size, 1)
			b := *old
			b.Targets = b.Targets[:keep]
			next = provider.Route{Backends: []provider.Backend{b}}
		}
		if err := r.route(ctx, next, fleet, weight); err != nil {
			return fleet, err
		}
		if old != nil && weight < 100 {
			keep := len(next.Backends[0].Targets)
			if keep < len(old.Targets) {
				if r.shrunk == nil {
					r.shrunk = map[string]int{old.FleetID: len(old.Targets)}
				}
				if _, err := r.resize(ctx, old.FleetID, keep); err != nil {
					return fleet, err
				}
				old.Targets = old.Targets[:keep]
				prev = provider.Route{Backends: []provider.Backend{*old}}
			}
		}
		if placed >= size {
			return fleet, nil
		}
		placed = min(placed+wave, size)
	}
}

func (r *rollout) resize(ctx workflow.Context, fleetID string, size int) (provider.Fleet, error) {
	var a *activities.Activities
	var f provider.Fleet
	err := workflow.ExecuteActivity(quickOptions(ctx, fmt.Sprintf("resize %s to %d", fleetID, size)), a.ResizeFleet,
		activities.ResizeInput{FleetID: fleetID, Size: size}).Get(ctx, &f)
	if err != nil {
		return f, r.fail("resizing fleet "+fleetID, err)
	}
	r.event(ctx, fmt.Sprintf("fleet %s now has %d instances", fleetID, len(f.Instances)))
	if fleetID == r.progress.NewFleet {
		r.progress.Instances = len(f.Instances)
	}
	return f, nil
}

// verify runs the verification analysis after full cutover.
func (r *rollout) verify(ctx workflow.Context, fleet provider.Fleet) error {
	if r.spec.Verify == nil {
		return r.stopped()
	}
	r.setPhase(ctx, PhaseVerifying, "verifying "+fleet.ID+" with analysis "+r.spec.Verify.Analysis)
	return r.analyze(ctx, r.spec.Verify.Analysis, fleet)
}

// soak keeps the old fleet warm so a rollback is one route switch; promote ends it.
func (r *rollout) soak(ctx workflow.Context) error {
	d := r.spec.SoakDuration()
	if d <= 0 || len(r.progress.OldFleets) == 0 || r.promoted {
		return r.stopped()
	}
	r.setPhase(ctx, PhaseSoaking, fmt.Sprintf("keeping %v warm for %s; imago rollout rollback %s -e %s switches back", r.progress.OldFleets, d, r.spec.Service, r.spec.Environment))
	_, err := r.wait(ctx, d, "soak "+d.String(), func() bool { return r.promoted })
	return err
}

// revert undoes a rollout that did not commit: traffic back to the previous route,
// then the new fleet torn down. It runs on a compensation context: after a
// cancellation too, retrying through a provider outage. The provider's traffic
// guard refuses to tear down a fleet that still receives traffic, so a failed
// restore never strands users.
func (r *rollout) revert(ctx workflow.Context, prev provider.Route, fleet provider.Fleet) {
	dctx := compensation(ctx)
	var a *activities.Activities
	if r.routeTouched {
		r.setPhase(dctx, PhaseRollingBack, fmt.Sprintf("routing %s back to %v", r.key, prev.FleetIDs()))
		restore := prev
		restore.Listen = r.spec.Listen
		// A rolling rollout shrank the old fleet: grow it back before it takes traffic again.
		for i, b := range restore.Backends {
			if size, ok := r.shrunk[b.FleetID]; ok {
				f, err := r.resize(dctx, b.FleetID, size)
				if err != nil {
					r.event(ctx, "could not grow the old fleet back: "+reason(err))
					continue
				}
				restore.Backends[i].Targets = f.Addresses()
			}
		}
		err := workflow.ExecuteActivity(quickOptions(dctx, "restore previous route"), a.SetRoute,
			activities.SetRouteInput{Key: r.key, Route: restore, HealthPath: r.spec.Health.Path}).Get(dctx, nil)
		if err != nil {
			r.event(ctx, "could not restore the previous route: "+reason(err))
		} else {
			r.progress.Weights = weights(restore)
			r.event(ctx, fmt.Sprintf("traffic back on %v", prev.FleetIDs()))
		}
	}
	r.tearDown(dctx, fleet)
}
