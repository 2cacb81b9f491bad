package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/imago/imago/internal/contract"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// registerUpdates installs the four updates. Each validator refuses, with a reason
// the caller sees, what makes no sense in the rollout's current state.
func (r *rollout) registerUpdates(ctx workflow.Context) error {
	if err := workflow.SetUpdateHandler(ctx, contract.UpdateChecked, func(ctx workflow.Context) error {
		if err := workflow.Await(ctx, func() bool { return r.checked }); err != nil {
			return err
		}
		return r.checkErr
	}); err != nil {
		return err
	}
	return r.setDecisionUpdates(ctx,
		decisionUpdate{contract.UpdateApprove, func(in contract.DecisionInput) error {
			return r.validateApprove(in)
		}, func(ctx workflow.Context, in contract.DecisionInput) {
			r.approved = decide(ctx, in)
			r.progress.Approvals = append(r.progress.Approvals, contract.Approval{Gate: r.gate, Decision: *r.approved})
			r.event(ctx, fmt.Sprintf("%s approved by %s%s", r.gate, in.By, because(in.Reason)))
		}},
		decisionUpdate{contract.UpdatePromote, func(contract.DecisionInput) error {
			if r.committed {
				return errors.New("the old fleet is already being decommissioned; there is nothing left to skip")
			}
			if r.promoted {
				return errors.New("already promoted")
			}
			return nil
		}, func(ctx workflow.Context, in contract.DecisionInput) {
			r.promoted = true
			r.event(ctx, fmt.Sprintf("promoted by %s%s: remaining pauses and the soak are skipped", in.By, because(in.Reason)))
		}},
		decisionUpdate{contract.UpdateAbort, func(contract.DecisionInput) error {
			if r.committed {
				return errors.New("the old fleet is already being decommissioned; start a rollout of the previous image instead (imago rollout rollback)")
			}
			if r.stop != nil {
				return fmt.Errorf("a %s was already requested by %s", r.stopKind, r.stop.By)
			}
			return nil
		}, func(ctx workflow.Context, in contract.DecisionInput) {
			r.stop, r.stopKind = decide(ctx, in), "abort"
			r.event(ctx, fmt.Sprintf("abort requested by %s%s", in.By, because(in.Reason)))
		}},
		decisionUpdate{contract.UpdateRollback, func(contract.DecisionInput) error {
			if r.committed {
				return errors.New("the old fleet is already being decommissioned; roll back with a new rollout of the previous image once this one ends")
			}
			if !r.routeTouched {
				return fmt.Errorf("no traffic has moved yet (the rollout is %s); use abort", r.progress.Phase)
			}
			if r.stop != nil {
				return fmt.Errorf("a %s was already requested by %s", r.stopKind, r.stop.By)
			}
			return nil
		}, func(ctx workflow.Context, in contract.DecisionInput) {
			r.stop, r.stopKind = decide(ctx, in), "rollback"
			r.event(ctx, fmt.Sprintf("rollback requested by %s%s", in.By, because(in.Reason)))
		}},
	)
}

// decisionUpdate is an update a person sends to a rollout or pipeline
// (approve, promote, abort, rollback): validate refuses what makes no sense in
// the workflow's current state, apply records the decision.
type decisionUpdate struct {
	name     string
	validate func(contract.DecisionInput) error
	apply    func(workflow.Context, contract.DecisionInput)
}

// setDecisionUpdates installs updates. Every validator first refuses, with a
// reason the caller sees, an update that does not say who sends it and one
// that comes after the workflow ended; then the update's own.
func (t *tracker) setDecisionUpdates(ctx workflow.Context, updates ...decisionUpdate) error {
	for _, u := range updates {
		err := workflow.SetUpdateHandlerWithOptions(ctx, u.name,
			func(ctx workflow.Context, in contract.DecisionInput) error { u.apply(ctx, in); return nil },
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, in contract.DecisionInput) error {
				if in.By == "" {
					return errors.New("say who you are (by)")
				}
				if _, ended := t.kind.outcome(t.story.Phase); ended {
					return fmt.Errorf("the %s already ended (%s)", t.kind.noun, t.story.Phase)
				}
				return u.validate(in)
			}})
		if err != nil {
			return err
		}
	}
	return nil
}

// decide records who decided what and why, now.
func decide(ctx workflow.Context, in contract.DecisionInput) *contract.Decision {
	return &contract.Decision{By: in.By, Reason: in.Reason, Time: workflow.Now(ctx)}
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}

// stopped turns a pending abort or rollback into the error that ends the rollout.
func (r *rollout) stopped() error {
	if r.stop == nil {
		return nil
	}
	kind, typ := "aborted", ErrRolloutAborted
	if r.stopKind == "rollback" {
		kind, typ = "rolled back", ErrRolledBack
	}
	msg := fmt.Sprintf("rollout %s %s by %s%s", r.id(), kind, r.stop.By, because(r.stop.Reason))
	if len(r.progress.OldFleets) > 0 {
		msg += "; the previous fleet serves again"
	}
	return temporal.NewNonRetryableApplicationError(msg, typ, nil)
}

// wait holds the rollout for d (forever when d < 0) or until cond, an abort or a
// rollback; it reports whether cond released it.
func (r *rollout) wait(ctx workflow.Context, d time.Duration, summary string, cond func() bool) (bool, error) {
	released := func() bool { return r.stop != nil || (cond != nil && cond()) }
	var ok bool
	var err error
	if d < 0 {
		err = workflow.Await(ctx, released)
		ok = true
	} else {
		ok, err = workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: d, TimerOptions: workflow.TimerOptions{Summary: summary}}, released)
	}
	if err != nil {
		return false, err
	}
	if serr := r.stopped(); serr != nil {
		return false, serr
	}
	return ok && cond != nil && cond(), nil
}

// approvalGate waits, when the spec asks for it, for someone to approve cutover; a
// gate that times out aborts the rollout.
func (r *rollout) approvalGate(ctx workflow.Context) error {
	if !r.spec.Approval.Required {
		return r.stopped()
	}
	return r.awaitApproval(ctx, contract.PhaseAwaitingApproval, "approval before cutover", r.spec.Approval.Timeout.D())
}

// awaitApproval opens a gate that approve (or promote) releases.
func (r *rollout) awaitApproval(ctx workflow.Context, phase contract.Phase, gate string, timeout time.Duration) error {
	r.gate, r.approved = gate, nil
	r.progress.Gate = gate
	defer func() { r.gate, r.progress.Gate = "", "" }()
	r.setPhase(ctx, phase, fmt.Sprintf("waiting for %s (imago rollout approve %s -e %s), at most %s", gate, r.spec.Service, r.spec.Environment, timeout))
	ok, err := r.wait(ctx, timeout, "await "+gate, func() bool { return r.approved != nil || r.promoted })
	if err != nil {
		return err
	}
	if !ok {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("rollout %s aborted: nobody approved %s within %s", r.id(), gate, timeout), ErrRolloutAborted, nil)
	}
	return nil
}

// deploymentSpecChange: the inventory's records carry the rollout's spec.
const deploymentSpecChange = "deployment-spec"

// recordDeployment writes the outcome into the inventory; it runs even after a
// cancellation, and its failure never changes the rollout's outcome.
func (r *rollout) recordDeployment(ctx workflow.Context, end contract.Phase, msg string) {
	outcome, _ := RolloutOutcome(end)
	info := workflow.GetInfo(ctx)
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	d := contract.Deployment{
		Service: r.spec.Service, Environment: r.spec.Environment, Region: r.spec.Region(), ImageID: r.progress.ImageID,
		FleetID: r.progress.NewFleet, RolloutID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		StartedBy: r.progress.StartedBy, Action: r.action, Strategy: r.spec.Strategy.Type, Outcome: outcome,
		Started: r.progress.StartedAt, Finished: workflow.Now(ctx),
	}
	if outcome != contract.OutcomeSucceeded {
		d.Reason = msg
	}
	// The spec goes with the record, so a campaign can roll it again.
	if workflow.GetVersion(ctx, deploymentSpecChange, workflow.DefaultVersion, 1) >= 1 {
		if b, err := json.Marshal(r.spec); err == nil {
			d.Spec = b
		}
	}
	if err := short(dctx, r.local, "record "+outcome.String()+" in the inventory", contract.ActivityRecordDeployment, d).Get(dctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("record deployment", "error", err)
	}
}

func (r *rollout) id() string { return r.spec.WorkflowID() }
