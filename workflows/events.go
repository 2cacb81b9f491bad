package workflows

import (
	"time"

	"github.com/imago/imago/internal/contract"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// phaseEventsChange is the workflow change that made rollouts and bakes publish
// their phase changes: runs recorded before it replay without the events.
const phaseEventsChange = "phase-events"

// phaseAttrOnChange is the workflow change that upserts ImagoPhase only when
// the phase changes (not at each canary step, wave or pause of one phase).
const phaseAttrOnChange = "phase-attribute-on-change"

// notifier upserts a run's ImagoPhase (upsertPhase) and publishes its phase changes and
// its outcome as events, through the PublishEvent local activity. Events are
// numbered within the run, so an event's ID (run ID + number) is the same
// however often it is sent.
type notifier struct {
	on  bool // the run began after phaseEventsChange
	seq int

	attrOnChange bool           // the run began after phaseAttrOnChange
	attr         contract.Phase // the ImagoPhase last upserted
}

// newNotifier asks, once per run, whether this run publishes events and how it
// upserts its phase.
func newNotifier(ctx workflow.Context) notifier {
	return notifier{
		on:           workflow.GetVersion(ctx, phaseEventsChange, workflow.DefaultVersion, 1) >= 1,
		attrOnChange: workflow.GetVersion(ctx, phaseAttrOnChange, workflow.DefaultVersion, 1) >= 1,
	}
}

// upsertPhase sets the ImagoPhase search attribute to phase: in a run that
// began after phaseAttrOnChange, only when the phase changed (each upsert is a
// history event).
func (n *notifier) upsertPhase(ctx workflow.Context, phase contract.Phase) {
	if !n.attrOnChange || phase != n.attr {
		if err := workflow.UpsertTypedSearchAttributes(ctx, contract.PhaseAttr.ValueSet(string(phase))); err != nil {
			workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
		}
		n.attr = phase
	}
}

// eventOptions: publishing is quick; a topic that stays down costs a phase at most
// ScheduleToClose (5 s), and then the workflow carries on without the event.
var eventOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    2 * time.Second,
	ScheduleToCloseTimeout: 5 * time.Second,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 2 * time.Second},
}

// publish sends one event, in order with the run's others, and returns it
// (ok is false in a run that publishes none). It never fails the
// workflow: an event that cannot be published is logged and skipped. It runs on a
// disconnected context so a cancelled run still reports how it ended.
func (n *notifier) publish(ctx workflow.Context, typ, subject string, data contract.EventData) (ev contract.Event, ok bool) {
	if !n.on {
		return ev, false
	}
	n.seq++
	info := workflow.GetInfo(ctx)
	data.WorkflowID, data.RunID = info.WorkflowExecution.ID, info.WorkflowExecution.RunID
	ev = contract.NewEvent(typ, info.Namespace, subject, n.seq, workflow.Now(ctx), data)
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(dctx, eventOptions), contract.ActivityPublishEvent, ev).Get(dctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("event not published", "type", typ, "id", ev.ID, "phase", data.Phase, "error", err)
	}
	return ev, true
}
