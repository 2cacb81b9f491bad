package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/contract"
)

// hooksChange is the workflow change that calls a spec's hooks (preRollout,
// confirmTrafficIncrease, postRollout, rollback). It is asked only by runs
// whose spec has hooks: others record nothing for it.
const hooksChange = "phase-hooks"

// notifyChange is the workflow change that tells a spec's notify targets of
// its notices; asked only by runs with a target that wants the notice.
const notifyChange = "notify-targets"

// hookAsk are the options of the hooks that decide (preRollout,
// confirmTrafficIncrease): an answer is the result; a hook that does not answer
// is asked again for a minute, then the rollout fails with why.
var hookAsk = workflow.ActivityOptions{
	StartToCloseTimeout:    15 * time.Second,
	ScheduleToCloseTimeout: time.Minute,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 5},
}

// hookTell are the options of the hooks that are told (postRollout, rollback)
// and of notifications: retried on any failure or non-2xx answer, then logged.
var hookTell = workflow.ActivityOptions{
	StartToCloseTimeout:    15 * time.Second,
	ScheduleToCloseTimeout: 2 * time.Minute,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 15 * time.Second, MaximumAttempts: 4},
}

// hooked tells whether this run calls hook name: its spec names it (and the
// run began after hooksChange).
func (r *rollout) hooked(ctx workflow.Context, name string) bool {
	if r.spec.Hooks.URL(name) == "" {
		return false
	}
	return workflow.GetVersion(ctx, hooksChange, workflow.DefaultVersion, 1) >= 1
}

// callHook POSTs hook name's payload: weight is what confirmTrafficIncrease
// asks for. A hook that is told (tell) is retried until it answers 2xx.
func (r *rollout) callHook(ctx workflow.Context, tell bool, name string, weight int, msg string) (contract.HookResult, error) {
	info := workflow.GetInfo(ctx)
	p := r.progress
	o := hookAsk
	if tell {
		o = hookTell
	}
	in := contract.HookInput{URL: r.spec.Hooks.URL(name), Secret: r.spec.Hooks.Secret, Retry: tell,
		Payload: contract.HookPayload{Hook: name, Service: p.Service, Environment: p.Environment, Image: p.ImageID, Phase: p.Phase,
			Weights: p.Weights, Weight: weight, Fleet: p.NewFleet, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
			StartedBy: p.StartedBy, Message: msg}}
	var res contract.HookResult
	err := workflow.ExecuteActivity(withOptions(ctx, o, name+" hook"), contract.ActivityRunHook, in).Get(ctx, &res)
	return res, err
}

// preRollout asks the preRollout hook before anything is provisioned: an
// answer other than 2xx fails the rollout with it.
func (r *rollout) preRollout(ctx workflow.Context) error {
	if !r.hooked(ctx, contract.HookPreRollout) {
		return r.stopped()
	}
	r.event(ctx, "asking the preRollout hook")
	res, err := r.callHook(ctx, false, contract.HookPreRollout, 0, "")
	if err != nil {
		return r.fail("asking the preRollout hook", err)
	}
	if !res.OK() {
		return r.fail("asking the preRollout hook", fmt.Errorf("the preRollout hook refused the rollout: it answered %s", res.Answer))
	}
	r.event(ctx, "the preRollout hook allowed the rollout: "+res.Answer)
	return r.stopped()
}

// confirmTrafficIncrease asks the confirmTrafficIncrease hook before the new
// fleet's weight goes up to weight. Until it answers 2xx the weight stays
// where it is, and the hook is asked again every hooks.interval, for at most
// hooks.timeout; then the rollout fails (and goes back to the old fleet).
func (r *rollout) confirmTrafficIncrease(ctx workflow.Context, fleetID string, weight int) error {
	now := 0
	for _, w := range r.progress.Weights {
		if w.FleetID == fleetID {
			now = w.Weight
		}
	}
	if weight <= now || !r.hooked(ctx, contract.HookConfirmTrafficIncrease) {
		return nil
	}
	h := r.spec.Hooks
	deadline := workflow.Now(ctx).Add(h.Timeout.D())
	step := r.progress.Step
	defer func() { r.progress.Step = step }()
	for held := false; ; held = true {
		res, err := r.callHook(ctx, false, contract.HookConfirmTrafficIncrease, weight, "")
		if err != nil {
			return r.fail(fmt.Sprintf("asking the confirmTrafficIncrease hook for %d%%", weight), err)
		}
		if res.OK() {
			if held {
				r.event(ctx, fmt.Sprintf("the confirmTrafficIncrease hook allowed %d%%: %s", weight, res.Answer))
			}
			return nil
		}
		if !workflow.Now(ctx).Before(deadline) {
			return r.fail(fmt.Sprintf("waiting for the confirmTrafficIncrease hook to allow %d%%", weight),
				fmt.Errorf("it did not allow it within hooks.timeout %s; its last answer: %s", h.Timeout, res.Answer))
		}
		msg := fmt.Sprintf("holding %d%% on %s: waiting for the confirmTrafficIncrease hook to allow %d%% (it answered %s); asking again every %s until %s",
			now, fleetID, weight, res.Answer, h.Interval, deadline.UTC().Format(time.RFC3339))
		r.progress.Step = fmt.Sprintf("waiting for the confirmTrafficIncrease hook to allow %d%%", weight)
		if !held {
			r.event(ctx, msg)
		}
		r.showDetails(ctx, msg)
		if _, err := r.wait(ctx, h.Interval.D(), "ask confirmTrafficIncrease again", nil); err != nil {
			return err
		}
	}
}

// finalHook tells postRollout of a rollout that succeeded, rollback of one
// whose traffic went back to the previous fleet; neither changes the outcome.
// Then it waits for the notifications still being sent.
func (r *rollout) finalHook(ctx workflow.Context, end contract.Phase, err error) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	name := contract.HookPostRollout
	if end != contract.PhaseSucceeded {
		name = contract.HookRollback
		if !r.routeTouched || r.committed {
			name = ""
		}
	}
	if name != "" && r.hooked(dctx, name) {
		msg := ""
		if err != nil {
			msg = reason(err)
		}
		if res, err := r.callHook(dctx, true, name, 0, msg); err != nil {
			r.event(dctx, fmt.Sprintf("could not tell the %s hook: %s", name, reason(err)))
		} else {
			r.event(dctx, fmt.Sprintf("told the %s hook: %s", name, res.Answer))
		}
	}
	_ = workflow.Await(dctx, func() bool { return r.notifying == 0 })
}

// notify tells the spec's notify targets that want it of the notice ev
// carries, if any: beside the run (a notification never holds a rollout
// up), retried, then logged. (The worker's IMAGO_NOTIFY_URL is told by the
// PublishEvent activity.)
func (r *rollout) notify(ctx workflow.Context, ev contract.Event) {
	n, ok := contract.NoticeOf(ev)
	if !ok || len(r.spec.Notify) == 0 {
		return
	}
	var targets []contract.NotifyTarget
	for _, t := range r.spec.Notify {
		if t.Wants(n) {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 || workflow.GetVersion(ctx, notifyChange, workflow.DefaultVersion, 1) < 1 {
		return
	}
	r.notifying++
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	workflow.Go(dctx, func(ctx workflow.Context) {
		defer func() { r.notifying-- }()
		err := workflow.ExecuteActivity(withOptions(ctx, hookTell, "notify "+string(n)), contract.ActivityNotify,
			contract.NotifyInput{Targets: targets, Notice: n, Event: ev}).Get(ctx, nil)
		if err != nil {
			workflow.GetLogger(ctx).Warn("notification not delivered", "notice", n, "error", err)
			r.event(ctx, fmt.Sprintf("could not notify of %s: %s", n, reason(err)))
		}
	})
}
