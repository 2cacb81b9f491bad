package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/analysis"
)

// shiftTraffic moves traffic to the new fleet by the spec's strategy and returns
// the new fleet as it ends (a rolling rollout grows it wave by wave).
func (r *rollout) shiftTraffic(ctx workflow.Context, prev contract.Route, fleet contract.Fleet) (contract.Fleet, error) {
	switch r.spec.Strategy.Type {
	case contract.Canary:
		return fleet, r.canary(ctx, prev, fleet)
	case contract.Rolling:
		return r.rolling(ctx, prev, fleet)
	}
	r.setPhase(ctx, contract.PhaseCuttingOver, fmt.Sprintf("switching %s to %s", r.key, fleet.ID))
	return fleet, r.route(ctx, prev, fleet, 100)
}

// route sends weight percent of traffic to the new fleet and the rest to the
// previous route's fleets, in proportion to their weights there.
func (r *rollout) route(ctx workflow.Context, prev contract.Route, fleet contract.Fleet, weight int) error {
	return r.routeTo(ctx, sharesOf(prev), fleet.ID, weight)
}

// routeTo is route with the previous route by share: fleets by reference,
// each with the number of its instances that serve.
func (r *rollout) routeTo(ctx workflow.Context, prev []contract.FleetShare, fleetID string, weight int) error {
	if len(prev) == 0 {
		weight = 100 // nothing else to send traffic to
	}
	// Never frozen mid-switch: a freeze or a closed window holds the split as it is.
	if err := r.hold(ctx, fmt.Sprintf("%d%% of traffic to %s", weight, fleetID)); err != nil {
		return err
	}
	if err := r.confirmTrafficIncrease(ctx, fleetID, weight); err != nil {
		return err
	}
	return r.setRoute(ctx, r.shares(prev, fleetID, weight), weight)
}

// setRoute switches the router to next. Fleets go by ID and count, never with
// their instances: the activity looks the targets up, so the rollout's history
// does not grow with the fleets.
func (r *rollout) setRoute(ctx workflow.Context, next []contract.FleetShare, weight int) error {
	r.routeTouched = true
	in := contract.SetRouteInput{Key: r.key, Shares: next, Route: contract.Route{Listen: r.spec.Listen}, HealthPath: r.spec.Health.Path}
	rules := r.rules.of(weight) // a canary's header routes, mirror, stickiness (rules.go)
	if !rules.Empty() {
		in.Shares, in.Route.RouteRules = withRuleFleets(next, rules), rules
	}
	err := workflow.ExecuteActivity(quickOptions(ctx, fmt.Sprintf("route %d%% → %s", weight, r.progress.NewFleet)), contract.ActivitySetRoute, in).Get(ctx, nil)
	if err != nil {
		return r.fail("moving traffic", err)
	}
	r.progress.Weights = shareWeights(next)
	msg := fmt.Sprintf("%d%% of traffic on %s", weight, r.progress.NewFleet)
	r.progress.RouteRules = nil
	if !rules.Empty() {
		r.progress.RouteRules = &rules
		msg += "; " + rules.String()
	}
	r.event(ctx, msg)
	return nil
}

// sharesOf is a route by share: every fleet with all its instances.
func sharesOf(route contract.Route) []contract.FleetShare {
	out := make([]contract.FleetShare, 0, len(route.Backends))
	for _, b := range route.Backends {
		out = append(out, contract.FleetShare{FleetID: b.FleetID, Weight: b.Weight})
	}
	return out
}

func shareWeights(shares []contract.FleetShare) []contract.FleetWeight {
	out := make([]contract.FleetWeight, 0, len(shares))
	for _, s := range shares {
		out = append(out, contract.FleetWeight{FleetID: s.FleetID, Weight: s.Weight})
	}
	return out
}

// canary walks the steps: weights, pauses, analyses; then 100%.
func (r *rollout) canary(ctx workflow.Context, prev contract.Route, fleet contract.Fleet) error {
	if err := r.startBaseline(ctx); err != nil { // strategy.baseline (baseline.go)
		return err
	}
	steps := r.spec.Strategy.Steps
	r.startRules(ctx)
	weight := 0 // the new fleet's, for steps that change only the rules
	for i, s := range steps {
		step := fmt.Sprintf("%d/%d", i+1, len(steps))
		switch {
		case s.SetHeaderRoute != nil || s.SetMirrorRoute != nil:
			if err := r.setRule(ctx, step, s, prev, fleet, weight); err != nil {
				return err
			}
		case s.SetWeight != nil:
			weight = *s.SetWeight
			r.progress.Step = fmt.Sprintf("%s setWeight %d", step, *s.SetWeight)
			r.setPhase(ctx, contract.PhaseCanary, fmt.Sprintf("step %s: %d%% to %s", step, *s.SetWeight, fleet.ID))
			if err := r.minHealthy(ctx, fleet, *s.SetWeight); err != nil {
				return err
			}
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
	r.setPhase(ctx, contract.PhaseCuttingOver, fmt.Sprintf("canary steps done: 100%% to %s", fleet.ID))
	if err := r.minHealthy(ctx, fleet, 100); err != nil {
		return err
	}
	if err := r.route(ctx, prev, fleet, 100); err != nil {
		return err
	}
	r.stopBaseline(ctx) // it takes no traffic any more
	return nil
}

// pause holds traffic for a duration (promote skips it) or, indefinitely, until
// approve or promote.
func (r *rollout) pause(ctx workflow.Context, step string, p contract.Pause) error {
	if r.promoted {
		r.event(ctx, "pause "+step+" skipped: promoted")
		return r.stopped()
	}
	if p.Indefinite() {
		r.progress.Step = step + " pause (until approved)"
		return r.awaitApproval(ctx, contract.PhasePaused, "pause "+step, r.spec.Approval.Timeout.D())
	}
	d := p.Duration.D()
	r.progress.Step = fmt.Sprintf("%s pause %s", step, d)
	r.setPhase(ctx, contract.PhasePaused, fmt.Sprintf("step %s: holding for %s (promote skips it)", step, d))
	_, err := r.wait(ctx, d, "pause "+d.String(), func() bool { return r.promoted })
	return err
}

// analyze runs a named analysis against the new fleet. Failed rolls back at once;
// inconclusive waits for a person to approve (continue) or abort.
func (r *rollout) analyze(ctx workflow.Context, name string, fleet contract.Fleet) error {
	a := r.spec.Analyses[name]
	res, err := r.measure(ctx, name, a, fleet, func(run *contract.AnalysisRun) {
		what := strings.TrimSpace(a.Provider + " " + a.Metric)
		r.setPhase(ctx, contract.PhaseAnalyzing, fmt.Sprintf("analysis %s of %s: %s, %s, %d × every %s", name, fleet.ID, what, run.Condition, a.Count, a.Interval))
	})
	if err != nil {
		return err
	}
	return r.judge(ctx, name, res, func() error {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("rollout %s rolled back automatically: analysis %s failed: %s", r.id(), name, res.Message), ErrRolledBack, nil)
	})
}

// measure runs analysis a (named name) against the new fleet and shows it in
// progress; start says what begins (the phase), once the query is known. A
// failed analysis is a result; the error is one that kept it from finishing.
func (r *rollout) measure(ctx workflow.Context, name string, a contract.Analysis, fleet contract.Fleet, start func(*contract.AnalysisRun),
	meanwhile ...func(workflow.Context)) (contract.AnalysisResult, error) {
	in := contract.AnalysisInput{Name: name, Spec: a.Spec(), Key: r.key, FleetID: fleet.ID}
	if a.Kind == contract.AnalysisCompare {
		in.BaselineFleetID = r.progress.BaselineFleet
	}
	// Shown while it measures; the query once, here, not in every message.
	r.progress.Analyses = append(r.progress.Analyses, contract.AnalysisRun{Name: name, Phase: contract.AnalysisRunning, FleetID: fleet.ID,
		AnalysisSource: analysis.SourceOf(in.Spec, in.Key, in.FleetID), BaselineFleetID: in.BaselineFleetID})
	run := &r.progress.Analyses[len(r.progress.Analyses)-1] // nothing appends until it is done
	start(run)
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
	var res contract.AnalysisResult
	err := r.interruptible(ctx, func(ctx workflow.Context) error {
		f := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), contract.ActivityRunAnalysis, in)
		for _, m := range meanwhile { // until the analysis ends
			mctx, cancel := workflow.WithCancel(ctx)
			defer cancel()
			workflow.Go(mctx, m)
		}
		return f.Get(ctx, &res)
	})
	if err != nil {
		run.Phase, run.Message = analysis.PhaseError, "did not finish: "+reason(err)
		return res, r.fail("running analysis "+name, err)
	}
	run.Phase, run.Message, run.Measurements = res.Phase, res.Message, analysis.Latest(res.Measurements, analysis.KeptMeasurements)
	counts := res.Counts
	if counts.Total() == 0 { // a result from before Counts
		counts = analysis.CountOf(res.Measurements)
	}
	run.Counts = &counts
	res.Counts = counts
	run.Judgment = res.Judgment
	if res.Source != "" { // a result from before AnalysisSource has none
		run.AnalysisSource = res.AnalysisSource
	}
	return res, nil
}

// judge acts on an analysis' result: passed goes on, inconclusive waits for
// a person to approve (continue) or abort, failed is the error failed makes.
func (r *rollout) judge(ctx workflow.Context, name string, res contract.AnalysisResult, failed func() error) error {
	switch res.Phase {
	case analysis.PhaseSuccessful:
		r.event(ctx, fmt.Sprintf("analysis %s passed: %s", name, res.Message))
		r.showDetails(ctx, "analysis "+name+" passed")
		return nil
	case analysis.PhaseInconclusive:
		r.event(ctx, fmt.Sprintf("analysis %s inconclusive: %s", name, res.Message))
		return r.awaitApproval(ctx, contract.PhasePaused, "inconclusive analysis "+name, r.spec.Approval.Timeout.D())
	}
	return failed()
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

// rollingByCountChange is the workflow change that made rolling rollouts cap
// their waves at MaxWaves and resize fleets with ScaleFleet (a count) instead
// of ResizeFleet (every instance): runs that began before it replay without.
const rollingByCountChange = "rolling-by-count"

// waves decides how this rolling rollout is cut into waves; the first call
// (provision's) records which way in the history.
func (r *rollout) waves(ctx workflow.Context) wavePlan {
	size := r.spec.Fleet.Size
	asked, _ := r.spec.Strategy.Waves.Size(size)
	r.byCount = workflow.GetVersion(ctx, rollingByCountChange, workflow.DefaultVersion, 1) >= 1
	if !r.byCount {
		return uncappedWaves(size, asked)
	}
	return planWaves(size, asked)
}

// rolling replaces the old fleet wave by wave: each wave grows the new fleet,
// checks its new instances, shifts weight in proportion, and shrinks the old
// fleet to match. Fleets travel by ID and count: no activity's input or result
// lists instances. The phase is rolling from the first wave to the last; what
// a wave does is its step (see waveStep).
func (r *rollout) rolling(ctx workflow.Context, prev contract.Route, fleet contract.Fleet) (contract.Fleet, error) {
	if r.budget != nil {
		return r.rollingByBudget(ctx, prev, fleet)
	}
	plan := r.waves(ctx)
	defer func() { r.waving = false }()
	// A single old fleet shrinks as the new one grows; several keep their size.
	olds := sharesOf(prev)
	var old *contract.FleetShare
	oldSize := 0
	if len(olds) == 1 {
		old, oldSize = &olds[0], len(prev.Backends[0].Targets)
		old.Instances = oldSize
	}
	grown := len(fleet.Instances) // new instances healthy and checked
	placed := grown
	for n := 1; ; n++ {
		if placed > grown {
			if _, err := r.resize(ctx, fleet.ID, placed); err != nil {
				return fleet, err
			}
			if err := r.waitHealthy(ctx, fleet.ID, grown, placed); err != nil {
				return fleet, err
			}
			if err := r.validate(ctx, fleet.ID, grown); err != nil {
				return fleet, err
			}
			grown = placed
		}
		weight, keep := plan.counts(oldSize, placed)
		step := fmt.Sprintf("wave %d of %d: %d of %d new instances take %d%%", n, plan.waves, placed, plan.size, weight)
		if r.waving {
			r.waveStep(ctx, step)
		} else {
			msg := step
			if why, ok := plan.widened(); ok {
				msg += " (" + why + ")"
			}
			r.progress.Step = step
			r.setPhase(ctx, contract.PhaseRolling, msg)
			r.waving = r.byCount
		}
		next := olds
		if old != nil && weight < 100 {
			next = []contract.FleetShare{{FleetID: old.FleetID, Weight: 100, Instances: keep}}
		}
		if err := r.routeTo(ctx, next, fleet.ID, weight); err != nil {
			return fleet, err
		}
		if old != nil && keep < old.Instances {
			if r.shrunk == nil {
				r.shrunk = map[string]int{old.FleetID: oldSize}
			}
			if _, err := r.resize(ctx, old.FleetID, keep); err != nil {
				return fleet, err
			}
			old.Instances = keep
		}
		if placed >= plan.size {
			return fleet, nil
		}
		placed = plan.next(placed)
	}
}

// enter moves the rollout to phase, or, during the waves of a rolling
// rollout, makes msg the wave's step.
func (r *rollout) enter(ctx workflow.Context, phase contract.Phase, msg string) {
	if r.waving {
		r.waveStep(ctx, msg)
		return
	}
	r.setPhase(ctx, phase, msg)
}

// waveStep shows what a wave does where people look (the progress step and
// events, the UI's current details) without a phase change: the ImagoPhase
// attribute and the phase events change once for all the waves, not three
// times a wave (as in runs from before rollingByCountChange), which also keeps
// a wave's history short.
func (r *rollout) waveStep(ctx workflow.Context, msg string) {
	r.progress.Step = msg
	r.event(ctx, msg)
	r.showDetails(ctx, msg)
}

// resize grows or shrinks a fleet and returns its number of instances.
func (r *rollout) resize(ctx workflow.Context, fleetID string, size int) (int, error) {
	ctx = quickOptions(ctx, fmt.Sprintf("resize %s to %d", fleetID, size))
	in := contract.ResizeInput{FleetID: fleetID, Size: size}
	var n int
	var err error
	if r.byCount {
		var res contract.ResizeResult
		err = workflow.ExecuteActivity(ctx, contract.ActivityScaleFleet, in).Get(ctx, &res)
		n = res.Instances
	} else { // a run from before rollingByCountChange
		var f contract.Fleet
		err = workflow.ExecuteActivity(ctx, contract.ActivityResizeFleet, in).Get(ctx, &f)
		n = len(f.Instances)
	}
	if err != nil {
		return n, r.fail("resizing fleet "+fleetID, err)
	}
	r.event(ctx, fmt.Sprintf("fleet %s now has %d instances", fleetID, n))
	if fleetID == r.progress.NewFleet {
		r.progress.Instances = n
	}
	return n, nil
}

// verify runs the verification analysis after full cutover.
func (r *rollout) verify(ctx workflow.Context, fleet contract.Fleet) error {
	if r.spec.Verify == nil {
		return r.stopped()
	}
	r.setPhase(ctx, contract.PhaseVerifying, "verifying "+fleet.ID+" with analysis "+r.spec.Verify.Analysis)
	return r.analyze(ctx, r.spec.Verify.Analysis, fleet)
}

// soak keeps the old fleet warm so a rollback is one route switch; promote ends it.
func (r *rollout) soak(ctx workflow.Context) error {
	d := r.spec.SoakDuration()
	if d <= 0 || len(r.progress.OldFleets) == 0 || r.promoted {
		return r.stopped()
	}
	r.setPhase(ctx, contract.PhaseSoaking, fmt.Sprintf("keeping %v warm for %s; imago rollout rollback %s -e %s switches back", r.progress.OldFleets, d, r.spec.Service, r.spec.Environment))
	_, err := r.wait(ctx, d, "soak "+d.String(), func() bool { return r.promoted })
	return err
}

// revert undoes a rollout that did not commit: traffic back to the previous route,
// then the new fleet torn down. It runs on a compensation context: after a
// cancellation too, retrying through a provider outage. The provider's traffic
// guard refuses to tear down a fleet that still receives traffic, so a failed
// restore never strands users.
func (r *rollout) revert(ctx workflow.Context, prev contract.Route, fleet contract.Fleet) {
	dctx := compensation(ctx)
	if r.routeTouched {
		r.setPhase(dctx, contract.PhaseRollingBack, fmt.Sprintf("routing %s back to %v", r.key, prev.FleetIDs()))
		// Every fleet of the previous route with all its instances.
		restore := sharesOf(prev)
		// A rolling rollout shrank the old fleet: grow it back before it takes traffic again.
		for _, b := range restore {
			if size, ok := r.shrunk[b.FleetID]; ok {
				if _, err := r.resize(dctx, b.FleetID, size); err != nil {
					r.event(ctx, "could not grow the old fleet back: "+reason(err))
				}
			}
		}
		err := workflow.ExecuteActivity(quickOptions(dctx, "restore previous route"), contract.ActivitySetRoute,
			contract.SetRouteInput{Key: r.key, Shares: restore, Route: contract.Route{Listen: r.spec.Listen}, HealthPath: r.spec.Health.Path}).Get(dctx, nil)
		if err != nil {
			r.event(ctx, "could not restore the previous route: "+reason(err))
		} else {
			r.progress.Weights, r.progress.RouteRules = shareWeights(restore), nil
			r.event(ctx, fmt.Sprintf("traffic back on %v", prev.FleetIDs()))
		}
	}
	r.tearDown(dctx, fleet)
	r.stopBaseline(dctx)
}
