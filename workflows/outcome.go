package workflows

import (
	"errors"

	"go.temporal.io/sdk/temporal"
)

// How rollouts, bakes and pipelines ended, worked out in one place: the final
// phase a workflow's error means (the workflows' last phase, the inventory's
// outcome), and the outcome word its finished CloudEvent and the
// imago_*_total metrics report for that phase.

// ends names a kind of workflow's final phases.
type ends struct {
	succeeded, failed, canceled string
	byType                      map[string]string // ApplicationError type → phase
}

var (
	rolloutEnds = ends{PhaseSucceeded, PhaseFailed, PhaseCanceled,
		map[string]string{ErrRolloutAborted: PhaseAborted, ErrRolledBack: PhaseRolledBack}}
	bakeEnds     = ends{BakePhaseSucceeded, BakePhaseFailed, BakePhaseCanceled, nil}
	pipelineEnds = ends{PipelinePhaseSucceeded, PipelinePhaseFailed, PipelinePhaseCanceled,
		map[string]string{ErrPipelineAborted: PipelinePhaseAborted}}
)

// end is the final phase of a workflow that returned err: succeeded when nil;
// the phase its ApplicationError's type names (aborted, rolled back); canceled
// when it was cancelled; failed otherwise.
func (e ends) end(err error) string {
	if err == nil {
		return e.succeeded
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		if phase, ok := e.byType[app.Type()]; ok {
			return phase
		}
	}
	if temporal.IsCanceledError(err) {
		return e.canceled
	}
	return e.failed
}

// RolloutEnd is the final phase of a rollout that returned err: succeeded,
// failed, aborted, rolled-back or canceled (also its inventory outcome).
func RolloutEnd(err error) string { return rolloutEnds.end(err) }

// BakeEnd is the final phase of a bake that returned err: succeeded, failed or canceled.
func BakeEnd(err error) string { return bakeEnds.end(err) }

// PipelineEnd is the final phase of a pipeline that returned err: succeeded,
// failed, aborted or canceled (skipped is decided before, by its stages).
func PipelineEnd(err error) string { return pipelineEnds.end(err) }

// rolloutOutcomes maps a rollout's final phases to the outcome its finished event
// (and the imago_rollouts_total metric) reports.
var rolloutOutcomes = map[string]string{
	PhaseSucceeded:  "succeeded",
	PhaseFailed:     "failed",
	PhaseAborted:    "aborted",
	PhaseRolledBack: "rolled_back",
	PhaseCanceled:   "canceled",
}

// RolloutOutcome is the outcome a rollout in phase reports (rolled_back for
// rolled-back); ok is false while the phase is not a final one.
func RolloutOutcome(phase string) (outcome string, ok bool) {
	outcome, ok = rolloutOutcomes[phase]
	return outcome, ok
}

// BakeOutcome is the outcome a bake in phase reports: succeeded, cached (it
// succeeded because the catalog had the image), failed or canceled; ok is false
// while the phase is not a final one.
func BakeOutcome(phase string, cached bool) (outcome string, ok bool) {
	switch phase {
	case BakePhaseSucceeded:
		if cached {
			return "cached", true
		}
		return "succeeded", true
	case BakePhaseFailed, BakePhaseCanceled:
		return phase, true
	}
	return "", false
}

// pipelineOutcomes maps a pipeline's final phases to its finished event's outcome.
var pipelineOutcomes = map[string]string{
	PipelinePhaseSucceeded: "succeeded",
	PipelinePhaseSkipped:   "skipped",
	PipelinePhaseFailed:    "failed",
	PipelinePhaseAborted:   "aborted",
	PipelinePhaseCanceled:  "canceled",
}
