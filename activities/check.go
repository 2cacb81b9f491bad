package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/spec"
)

// ErrInvalidSpec is the error type of a spec the worker's provider cannot run;
// its details are the spec.Errors, by field.
const ErrInvalidSpec = "InvalidSpec"

// CheckSpec refuses, non-retryably, a rollout spec the worker's provider
// cannot run: a spec for another provider, a canary on a provider without
// weighted routes, a rolling rollout on one that cannot resize fleets, a
// router analysis on one whose router counts nothing (spec.Rollout.CheckProvider).
// It reads only the worker's configuration: nothing is made.
func (a *Activities) CheckSpec(ctx context.Context, r spec.Rollout) error {
	err := r.CheckProvider(a.Provider.Name(), a.Provider.Capabilities())
	var es spec.Errors
	if errors.As(err, &es) {
		return temporal.NewNonRetryableApplicationError(es.Error(), ErrInvalidSpec, nil, es)
	}
	return err
}

// InvalidSpec returns the problems of a spec refused by CheckSpec, found
// anywhere in err's chain (an activity, update or workflow failure wrapping it).
func InvalidSpec(err error) (spec.Errors, bool) {
	for err != nil {
		var app *temporal.ApplicationError
		if !errors.As(err, &app) {
			return nil, false
		}
		if app.Type() == ErrInvalidSpec {
			var es spec.Errors
			if app.HasDetails() && app.Details(&es) == nil && len(es) > 0 {
				return es, true
			}
			return nil, false
		}
		err = app.Unwrap()
	}
	return nil, false
}
