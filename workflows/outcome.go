package workflows

import (
	"errors"

	"github.com/imago/imago/internal/contract"

	"go.temporal.io/sdk/temporal"
)

// How rollouts, bakes and pipelines ended, worked out in one place: the final
// phase a workflow's error means (the workflows' last phase, the inventory's
// outcome), and the outcome word its finished CloudEvent and the
// imago_*_total metrics report for that phase.

// ends names a kind of workflow's final phases.
type ends struct {
	succeeded, failed, canceled contract.Phase
	byType                      map[string]contract.Phase // ApplicationError type → phase
}

var (
	rolloutEnds = ends{contract.PhaseSucceeded, contract.PhaseFailed, contract.PhaseCanceled,
		map[string]contract.Phase{ErrRolloutAborted: contract.PhaseAborted, ErrRolledBack: contract.PhaseRolledBack}}
	bakeEnds     = ends{contract.PhaseSucceeded, contract.PhaseFailed, contract.PhaseCanceled, nil}
	campaignEnds = ends{contract.PhaseSucceeded, contract.PhaseFailed, contract.PhaseCanceled,
		map[string]contract.Phase{ErrCampaignAborted: contract.PhaseAborted}}
	pipelineEnds = ends{contract.PhaseSucceeded, contract.PhaseFailed, contract.PhaseCanceled,
		map[string]contract.Phase{ErrPipelineAborted: contract.PhaseAborted}}
)

// end is the final phase of a workflow that returned err: succeeded when nil;
// the phase its ApplicationError's type names (aborted, rolled back); canceled
// when it was cancelled; failed otherwise.
func (e ends) end(err error) contract.Phase {
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
func RolloutEnd(err error) contract.Phase { return rolloutEnds.end(err) }

// BakeEnd is the final phase of a bake that returned err: succeeded, failed or canceled.
func BakeEnd(err error) contract.Phase { return bakeEnds.end(err) }

// PipelineEnd is the final phase of a pipeline that returned err: succeeded,
// failed, aborted or canceled (skipped is decided before, by its stages).
func PipelineEnd(err error) contract.Phase { return pipelineEnds.end(err) }

// rolloutOutcomes maps a rollout's final phases to its outcome: the same word
// (a final phase is the outcome's canonical form, as the inventory records it);
// its finished event and the imago_rollouts_total metric say it as
// Outcome.MetricLabel (rolled_back).
var rolloutOutcomes = map[contract.Phase]contract.Outcome{
	contract.PhaseSucceeded:  contract.OutcomeSucceeded,
	contract.PhaseFailed:     contract.OutcomeFailed,
	contract.PhaseAborted:    contract.OutcomeAborted,
	contract.PhaseRolledBack: contract.OutcomeRolledBack,
	contract.PhaseCanceled:   contract.OutcomeCanceled,
}

// RolloutOutcome is the outcome of a rollout in phase; ok is false while the
// phase is not a final one.
func RolloutOutcome(phase contract.Phase) (outcome contract.Outcome, ok bool) {
	outcome, ok = rolloutOutcomes[phase]
	return outcome, ok
}

// BakeOutcome is the outcome of a bake in phase: succeeded, cached (it
// succeeded because the catalog had the image), failed or canceled; ok is false
// while the phase is not a final one.
func BakeOutcome(phase contract.Phase, cached bool) (outcome contract.Outcome, ok bool) {
	switch phase {
	case contract.PhaseSucceeded:
		if cached {
			return contract.OutcomeCached, true
		}
		return contract.OutcomeSucceeded, true
	case contract.PhaseFailed:
		return contract.OutcomeFailed, true
	case contract.PhaseCanceled:
		return contract.OutcomeCanceled, true
	}
	return "", false
}

// pipelineOutcomes maps a pipeline's final phases to its outcome.
var pipelineOutcomes = map[contract.Phase]contract.Outcome{
	contract.PhaseSucceeded: contract.OutcomeSucceeded,
	contract.PhaseSkipped:   contract.OutcomeSkipped,
	contract.PhaseFailed:    contract.OutcomeFailed,
	contract.PhaseAborted:   contract.OutcomeAborted,
	contract.PhaseCanceled:  contract.OutcomeCanceled,
}

// PipelineOutcome is the outcome of a pipeline in phase; ok is false while the
// phase is not a final one.
func PipelineOutcome(phase contract.Phase) (outcome contract.Outcome, ok bool) {
	outcome, ok = pipelineOutcomes[phase]
	return outcome, ok
}

// CampaignEnd is the final phase of a campaign that returned err: succeeded,
// failed, aborted or canceled.
func CampaignEnd(err error) contract.Phase { return campaignEnds.end(err) }

// CampaignOutcome is the outcome of a campaign in phase; ok is false while the
// phase is not a final one (a pipeline's outcomes but skipped).
func CampaignOutcome(phase contract.Phase) (outcome contract.Outcome, ok bool) {
	if phase == contract.PhaseSkipped {
		return "", false
	}
	return PipelineOutcome(phase)
}
