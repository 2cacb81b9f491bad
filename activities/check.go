package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// CheckSpec refuses, non-retryably, a rollout spec the worker's provider
// cannot run: a spec for another provider, a canary on a provider without
// weighted routes, a rolling rollout on one that cannot resize fleets, a
// router analysis on one whose router counts nothing (spec.Rollout.CheckProvider).
// It reads only the worker's configuration: nothing is made.
func (a *Activities) CheckSpec(ctx context.Context, r contract.Rollout) error {
	err := (&spec.Rollout{Rollout: r}).CheckProvider(a.Provider.Name(), a.Provider.Capabilities())
	var es contract.FieldErrors
	if errors.As(err, &es) {
		return temporal.NewNonRetryableApplicationError(es.Error(), contract.ErrInvalidSpec, nil, es)
	}
	return err
}
