package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// PlanLifecycle decides what the image lifecycle rules do to every image of
// the services that have one, now (see catalog.PlanLifecycle). It changes nothing.
func (a *Activities) PlanLifecycle(ctx context.Context) ([]contract.LifecycleDecision, error) {
	return a.Catalog.PlanLifecycle(ctx, time.Now(), spec.DefaultRetain)
}

// ApplyLifecycle deprecates or deletes one image as a sweep decided. It plans
// again first and refuses (without retry) when the image is no longer to be
// acted on: a rollout may have made it live, or a channel moved to it, since
// the sweep listed it.
func (a *Activities) ApplyLifecycle(ctx context.Context, in contract.ApplyLifecycleInput) error {
	now := time.Now()
	ds, err := a.Catalog.PlanLifecycle(ctx, now, spec.DefaultRetain)
	if err != nil {
		return err
	}
	want := in.Decision
	for _, d := range ds {
		if d.ImageID != want.ImageID {
			continue
		}
		if d.Action != want.Action {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("image %s is no longer to %s: %s now (%s)", d.ImageID, want.Action, d.Action, d.Why), contract.ErrProvider, nil)
		}
		switch d.Action {
		case contract.LifecycleDeprecate:
			return a.Catalog.Deprecate(ctx, d.ImageID, d.Rule, now)
		case contract.LifecycleDelete:
			return a.Catalog.DeleteImage(ctx, d.ImageID, d.Rule, now)
		}
		return nil
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("image %s is no longer to %s: its service's rule or the image changed since the sweep listed it", want.ImageID, want.Action), contract.ErrProvider, nil)
}
