package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

// RecordDeployment records a finished rollout or rollback in the catalog's
// inventory and returns the stored entry. A RunID or RolloutID left empty is
// taken from the calling workflow. It is idempotent for a run and outcome: a
// retry after a first attempt that got through returns that attempt's entry.
func (a *Activities) RecordDeployment(ctx context.Context, d contract.Deployment) (contract.Deployment, error) {
	if activity.IsActivity(ctx) {
		wf := activity.GetInfo(ctx).WorkflowExecution
		if d.RunID == "" {
			d.RunID = wf.RunID
		}
		if d.RolloutID == "" {
			d.RolloutID = wf.ID
		}
	}
	rec, err := a.Catalog.RecordDeployment(ctx, d)
	return rec, inventoryError(err)
}

// ErrNoPreviousImage is the error type of a PreviousImage that found nothing to
// roll back to (or no live image to roll back from); retrying cannot help.
const ErrNoPreviousImage = "NoPreviousImage"

// PreviousImage finds the image a rollback after the old fleet was
// decommissioned rolls out: the newest deployable image (deployed successfully,
// not revoked, still in the catalog) of the service in the environment other
// than the live one (catalog.Previous).
func (a *Activities) PreviousImage(ctx context.Context, in contract.PreviousImageInput) (contract.PreviousImageResult, error) {
	from, to, err := a.Catalog.Previous(ctx, in.Service, in.Environment)
	if errors.Is(err, catalog.ErrNoPrevious) || errors.Is(err, catalog.ErrNotFound) {
		return contract.PreviousImageResult{From: from}, temporal.NewNonRetryableApplicationError(err.Error(), ErrNoPreviousImage, err)
	}
	if err != nil {
		return contract.PreviousImageResult{}, inventoryError(err)
	}
	return contract.PreviousImageResult{ImageID: to, From: from}, nil
}

// inventoryError makes refused input non-retryable; storage errors retry.
func inventoryError(err error) error {
	if err != nil && errors.Is(err, catalog.ErrInvalidDeployment) {
		return temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrInvalidDeployment, err)
	}
	return err
}
