package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/contract"
)

// tracker shows where a rollout, bake or pipeline is, one way for all three
// (each embeds one): the phase and the latest events of its progress query
// (the Story its progress embeds), the web UI's current details, the
// ImagoPhase search attribute and the phase CloudEvents.
//
// Only the search-attribute upserts and the events' local activity are
// commands (see notifier); the story and the current details are workflow
// state, not in the history.
type tracker struct {
	story *contract.Story // the progress's, which the query returns
	notifier
	kind trackedKind
}

// trackedKind is what a tracker needs to know of the workflow it tracks.
type trackedKind struct {
	noun                      string // "rollout", "bake", "pipeline": what people call it
	phaseEvent, finishedEvent string // its CloudEvent types

	// describe is the run as its phase events say it: their subject, and
	// their data but for phase, message, outcome and error; failure is why it
	// failed, for its finished event.
	describe func() (subject string, data contract.EventData, failure string)
	// outcome is the outcome of a final phase; ok is false for the others.
	outcome func(contract.Phase) (o contract.Outcome, ok bool)
	// details follow the phase line in the UI's current details (a rollout's
	// analyses); nil for none.
	details func() string

	// failed names the run in its failure ("bake of hello", "pipeline
	// nightly") and failType is that failure's error type (see fail); a
	// rollout, whose failure says what still serves, has its own.
	failed   func() string
	failType string
	// notify tells people of an event they want to hear of (a rollout's
	// notify targets); nil for none.
	notify func(workflow.Context, contract.Event)
}

// newTracker tracks the workflow whose progress embeds story. It asks the
// notifier's versions (two markers), so it is made where the notifier always was.
func newTracker(ctx workflow.Context, story *contract.Story, kind trackedKind) tracker {
	return tracker{story: story, notifier: newNotifier(ctx), kind: kind}
}

// setPhase moves to a new phase: an event, the ImagoPhase search attribute,
// the UI's current details, and an event on IMAGO_EVENTS_URL (see events.go).
func (t *tracker) setPhase(ctx workflow.Context, phase contract.Phase, msg string) {
	t.story.Phase = phase
	t.event(ctx, msg)
	t.upsertPhase(ctx, phase)
	t.showDetails(ctx, msg)
	t.publishPhase(ctx, msg)
}

// event adds one line to the story (and the log), keeping the latest
// contract.MaxProgressEvents; EventCount counts them all, for followers.
func (t *tracker) event(ctx workflow.Context, msg string) {
	s := t.story
	s.EventCount++
	s.Events = append(s.Events, contract.ProgressEvent{Time: workflow.Now(ctx), Phase: s.Phase, Message: msg})
	if n := len(s.Events); n > contract.MaxProgressEvents {
		s.Events = s.Events[n-contract.MaxProgressEvents:]
	}
	workflow.GetLogger(ctx).Info(msg, "phase", s.Phase)
}

// showDetails sets the web UI's current details: the phase and msg, then the
// workflow's own details. Current details are not in the history: they cost
// it nothing.
func (t *tracker) showDetails(ctx workflow.Context, msg string) {
	d := fmt.Sprintf("**%s** — %s", t.story.Phase, msg)
	if t.kind.details != nil {
		d += t.kind.details()
	}
	workflow.SetCurrentDetails(ctx, d)
}

// publishPhase publishes the phase change; a final phase publishes the
// outcome instead.
func (t *tracker) publishPhase(ctx workflow.Context, msg string) {
	subject, data, failure := t.kind.describe()
	data.Phase, data.Message = t.story.Phase, msg
	typ := t.kind.phaseEvent
	if outcome, final := t.kind.outcome(t.story.Phase); final {
		typ, data.Outcome, data.Error = t.kind.finishedEvent, outcome.MetricLabel(), failure
	}
	if ev, ok := t.publish(ctx, typ, subject, data); ok && t.kind.notify != nil {
		t.kind.notify(ctx, ev)
	}
}

// fail is the run's failure while doing something: a non-retryable error of
// the kind's failType, "<failed> failed while <doing>: <reason>", wrapping err.
func (t *tracker) fail(doing string, err error) error {
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("%s failed while %s: %s", t.kind.failed(), doing, reason(err)), t.kind.failType, err)
}
