package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/contract"
)

// gatesChange is the workflow change that holds a rollout for its deployment
// windows and for freezes before it provisions and before each traffic change
// (a CheckFreeze local activity, and timers while it waits). Runs recorded
// before it go straight on.
const gatesChange = "deployment-windows-and-freezes"

// windowGate is the gate an approve (with a reason) releases while a rollout
// waits for a deployment window: the override holds for the rest of the rollout.
const windowGate = "deployment window"

// gates is what a rollout keeps of its windows and freezes.
type gates struct {
	override *contract.Decision // who overrode the windows, and why
	nudged   bool               // SignalFreezeChanged came: check the freezes again now
	draining bool               // the signal's reader runs
}

// hold waits, before what (provisioning, a traffic change), while a freeze
// covers the rollout (phase frozen) or it is outside every deployment window of
// its spec (phase waiting-window), then returns to the phase it was in. An abort
// or rollback ends the wait; a rollback rollout (Action rollback) is never held.
func (r *rollout) hold(ctx workflow.Context, what string) error {
	if err := r.stopped(); err != nil {
		return err
	}
	if r.action == contract.ActionRollback || workflow.GetVersion(ctx, gatesChange, workflow.DefaultVersion, 1) < 1 {
		return nil
	}
	r.drainFreezeSignals(ctx)
	phase, held := r.progress.Phase, false
	defer func() { r.progress.Hold = nil }()
	for {
		frozen, err := r.frozen(ctx, what)
		if err != nil {
			return err
		}
		if !frozen {
			waited, err := r.outsideWindows(ctx, what)
			if err != nil {
				return err
			}
			if !waited {
				break
			}
		}
		held = true
	}
	if held {
		r.progress.Hold = nil
		r.setPhase(ctx, phase, "going on: "+what)
	}
	return nil
}

// frozen checks the freezes (a local activity: the catalog) and, while one
// covers the rollout, waits for a SignalFreezeChanged, its until or
// contract.FreezeRecheck, whichever comes first; it reports whether it waited.
func (r *rollout) frozen(ctx workflow.Context, what string) (bool, error) {
	var res contract.CheckFreezeResult
	err := short(ctx, r.local, "check freezes of "+r.key.String(), contract.ActivityCheckFreeze,
		contract.CheckFreezeInput{Service: r.spec.Service, Environment: r.spec.Environment}).Get(ctx, &res)
	if err != nil {
		return false, r.fail("checking for freezes", err)
	}
	if len(res.Freezes) == 0 {
		return false, nil
	}
	now := workflow.Now(ctx)
	var whys []string
	var until *time.Time
	recheck := contract.FreezeRecheck
	for _, f := range res.Freezes {
		why := fmt.Sprintf("%s frozen by %s since %s: %s", f.Scope(), f.By, f.Since.UTC().Format(time.RFC3339), f.Reason)
		if f.Until != nil {
			why += ", until " + f.Until.UTC().Format(time.RFC3339)
			if until == nil || f.Until.After(*until) {
				until = f.Until
			}
			recheck = min(recheck, max(f.Until.Sub(now), time.Second))
		}
		whys = append(whys, why)
	}
	if slices.ContainsFunc(res.Freezes, func(f contract.Freeze) bool { return f.Until == nil }) {
		until = nil // one of them lasts until someone ends it
	}
	why := strings.Join(whys, "; ")
	msg := fmt.Sprintf("held before %s: %s; it goes on when the freeze ends (%s)", what, why, res.Freezes[0].EndCommand())
	r.progress.Hold = &contract.Hold{Phase: contract.PhaseFrozen, Why: why, Until: until}
	if r.progress.Phase != contract.PhaseFrozen || r.lastMessage() != msg {
		r.setPhase(ctx, contract.PhaseFrozen, msg)
	}
	r.gates.nudged = false
	if _, err := r.wait(ctx, recheck, "frozen: check again", func() bool { return r.gates.nudged }); err != nil {
		return true, err
	}
	return true, nil
}

// outsideWindows waits, when the spec has windows and none is open, for the
// next one to open or an approve with a reason (which overrides the windows
// for the rest of the rollout); it reports whether it waited.
func (r *rollout) outsideWindows(ctx workflow.Context, what string) (bool, error) {
	if len(r.spec.Windows) == 0 || r.gates.override != nil {
		return false, nil
	}
	now := workflow.Now(ctx)
	open, next, w := r.spec.Windows.At(now)
	if open {
		return false, nil
	}
	why := fmt.Sprintf("outside every deployment window (%s); the next opens %s (%s)",
		r.spec.Windows, next.Format("Mon 2006-01-02 15:04 MST"), next.UTC().Format(time.RFC3339))
	if w.Timezone == "" {
		why = fmt.Sprintf("outside every deployment window (%s); the next opens %s", r.spec.Windows, next.UTC().Format(time.RFC3339))
	}
	r.progress.Hold = &contract.Hold{Phase: contract.PhaseWaitingWindow, Why: why, Until: &next}
	r.gate, r.approved = windowGate, nil
	r.progress.Gate = windowGate
	defer func() { r.gate, r.progress.Gate = "", "" }()
	r.setPhase(ctx, contract.PhaseWaitingWindow, fmt.Sprintf("held before %s: %s; imago rollout approve %s -e %s --reason R overrides",
		what, why, r.spec.Service, r.spec.Environment))
	approved, err := r.wait(ctx, next.Sub(now), "wait for the deployment window", func() bool { return r.approved != nil })
	if err != nil {
		return true, err
	}
	if approved {
		r.gates.override = r.approved
		r.event(ctx, fmt.Sprintf("deployment windows overridden by %s%s for the rest of the rollout", r.approved.By, because(r.approved.Reason)))
	}
	return true, nil
}

// drainFreezeSignals reads SignalFreezeChanged for the rest of the run: each
// one wakes a frozen rollout to check again. (Reading a signal adds nothing
// to the history.)
func (r *rollout) drainFreezeSignals(ctx workflow.Context) {
	if r.gates.draining {
		return
	}
	r.gates.draining = true
	ch := workflow.GetSignalChannel(ctx, contract.SignalFreezeChanged)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for ch.Receive(ctx, nil) {
			r.gates.nudged = true
		}
	})
}

// lastMessage is the latest event's message.
func (r *rollout) lastMessage() string {
	if n := len(r.progress.Events); n > 0 {
		return r.progress.Events[n-1].Message
	}
	return ""
}

// validateApprove refuses an approve with nothing to release, and an
// override of a deployment window without a reason (it is the audit).
func (r *rollout) validateApprove(in contract.DecisionInput) error {
	switch {
	case r.progress.Phase == contract.PhaseFrozen && r.progress.Hold != nil:
		return fmt.Errorf("the rollout is frozen (%s); it goes on when the freeze ends: imago freeze end", r.progress.Hold.Why)
	case r.gate == "":
		return fmt.Errorf("nothing waits for approval: the rollout is %s", r.progress.Phase)
	case r.gate == windowGate && strings.TrimSpace(in.Reason) == "":
		return fmt.Errorf("overriding the deployment windows needs a reason: imago rollout approve %s -e %s --reason \"why now\"", r.spec.Service, r.spec.Environment)
	}
	return nil
}
