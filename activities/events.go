package activities

import (
	"context"

	"go.temporal.io/sdk/activity"

	"github.com/imago/imago/internal/contract"
)

// PublishEvent publishes one event of a rollout or bake (built by the workflow,
// so a retry sends the same event ID). With no Events publisher it does nothing.
// Workflows run it as a local activity at every phase change.
//
// A rollout's notice (it awaits approval, or ended) also goes to the worker's
// IMAGO_NOTIFY_URL, after the event: a retry publishes the event again (with
// its ID, which consumers drop as a repeat).
func (a *Activities) PublishEvent(ctx context.Context, ev contract.Event) error {
	if a.Events != nil {
		if err := a.Events.Publish(ctx, ev); err != nil {
			return err
		}
		activity.GetLogger(ctx).Debug("event published", "type", ev.Type, "id", ev.ID, "phase", ev.Data.Phase, "topic", a.Events.URL())
	}
	return a.notifyDefault(ctx, ev)
}
