package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/contract"
)

// bakeTimeChange is the workflow change that runs the spec's bake time after
// cutover. A run that a worker without it began (which ignored bakeTime)
// replays without.
const bakeTimeChange = "bake-time"

// bakeTime watches the new fleet after full cutover, while the old fleet is
// still warm: the spec's bake-time analysis measures every its interval for
// the bake time's duration (the analysis stops at its first decisive
// failure). A failure rolls back at once: the rollout's undo switches the
// route back to the old fleet, and the rollout ends rolled-back with the
// failed measurement in its error's details (a contract.RolloutResult).
// Specs without bakeTime never ask for bakeTimeChange: their histories do
// not change.
func (r *rollout) bakeTime(ctx workflow.Context, fleet contract.Fleet, img string) (*contract.BakeTimeResult, error) {
	b := r.spec.BakeTime
	if b == nil || workflow.GetVersion(ctx, bakeTimeChange, workflow.DefaultVersion, 1) < 1 {
		return nil, r.stopped()
	}
	a := r.spec.Analyses[b.Analysis]
	a.Count = b.Measurements(a)
	d := b.Duration.D()
	ends := workflow.Now(ctx).Add(d)
	r.progress.BakeTimeEnds = &ends
	defer func() { r.progress.BakeTimeEnds = nil }()
	back := fmt.Sprintf("a failure switches traffic back to %s", strings.Join(r.progress.OldFleets, ", "))
	if len(r.progress.OldFleets) == 0 {
		back = "no old fleet to switch back to: a failure tears the new fleet down"
	}
	left := func() string {
		rest := max(ends.Sub(workflow.Now(ctx)), 0).Round(time.Second)
		return fmt.Sprintf("bake time: analysis %s on %s, every %s; %s left of %s (until %s UTC); %s",
			b.Analysis, fleet.ID, a.Interval, rest, d, ends.UTC().Format("15:04:05"), back)
	}
	res, err := r.measure(ctx, b.Analysis, a, fleet, func(*contract.AnalysisRun) {
		r.progress.Step = left()
		r.setPhase(ctx, contract.PhaseBakeTime, left())
	}, func(ctx workflow.Context) { r.showRemaining(ctx, ends, left) })
	if err != nil {
		return nil, err
	}
	out := &contract.BakeTimeResult{Analysis: b.Analysis, Duration: b.Duration, Phase: res.Phase, Message: res.Message, Counts: res.Counts}
	return out, r.judge(ctx, b.Analysis, res, func() error {
		out.Failed = failedMeasurement(res.Measurements)
		what := res.Message
		if out.Failed != nil {
			what = fmt.Sprintf("%s (at %s: %s)", res.Message, out.Failed.Time.UTC().Format("15:04:05"), out.Failed.Message)
		}
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("rollout %s rolled back automatically: bake-time analysis %s failed: %s", r.id(), b.Analysis, what), ErrRolledBack, nil,
			contract.RolloutResult{ImageID: img, FleetID: fleet.ID, Instances: r.progress.Instances, BakeTime: out})
	})
}

// showRemaining refreshes the current details and the step with the time
// left, until ctx is done: every minute, or every tenth of the bake time when
// that is shorter (but not under 10 s).
func (r *rollout) showRemaining(ctx workflow.Context, ends time.Time, left func() string) {
	every := min(max(ends.Sub(workflow.Now(ctx))/10, 10*time.Second), time.Minute)
	for {
		if err := workflow.NewTimer(ctx, every).Get(ctx, nil); err != nil {
			return // the analysis ended
		}
		if !workflow.Now(ctx).Before(ends) {
			return
		}
		msg := left()
		r.progress.Step = msg
		r.showDetails(ctx, msg)
	}
}

// failedMeasurement is the latest failed measurement of ms.
func failedMeasurement(ms []contract.Measurement) *contract.Measurement {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Phase == analysis.PhaseFailed {
			m := ms[i]
			return &m
		}
	}
	return nil
}
