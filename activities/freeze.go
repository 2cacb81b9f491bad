package activities

import (
	"context"
	"time"

	"github.com/imago/imago/internal/contract"
)

// CheckFreeze returns the freezes in force now that hold a rollout of
// in.Service to in.Environment (the catalog's freezes/ logs). A worker without
// a catalog (a workflow test's) has no freezes.
func (a *Activities) CheckFreeze(ctx context.Context, in contract.CheckFreezeInput) (contract.CheckFreezeResult, error) {
	if a.Catalog == nil {
		return contract.CheckFreezeResult{}, nil
	}
	fs, err := a.Catalog.FreezesCovering(ctx, in.Service, in.Environment, time.Now())
	if err != nil {
		return contract.CheckFreezeResult{}, err
	}
	return contract.CheckFreezeResult{Freezes: fs}, nil
}
