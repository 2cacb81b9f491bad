package activities

import (
	"context"
	"errors"
	"slices"

	"go.temporal.io/sdk/activity"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/notify"
)

// Notify tells each of in.Targets of a rollout's notice, through the outbound
// guard. A target that cannot be told makes the attempt fail, and the retry
// tells only those (the others were told); the workflow logs what is left
// when the retries run out. It never fails a rollout.
func (a *Activities) Notify(ctx context.Context, in contract.NotifyInput) error {
	var done []int
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &done)
	}
	var errs []error
	for i, t := range in.Targets {
		if slices.Contains(done, i) {
			continue
		}
		if err := notify.Deliver(ctx, a.Analysis, t, in.Notice, in.Event); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, i)
		activity.RecordHeartbeat(ctx, done)
	}
	return errors.Join(errs...)
}

// notifyDefault tells the worker's IMAGO_NOTIFY_URL of a rollout's notice,
// if ev is one: from PublishEvent, so rollouts without notify targets of
// their own record nothing more in their histories for it.
func (a *Activities) notifyDefault(ctx context.Context, ev contract.Event) error {
	if a.NotifyURL == "" {
		return nil
	}
	n, ok := contract.NoticeOf(ev)
	if !ok {
		return nil
	}
	return notify.Deliver(ctx, a.Analysis, contract.NotifyTarget{URL: a.NotifyURL, Format: a.NotifyFormat}, n, ev)
}
