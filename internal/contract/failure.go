package contract

import (
	"errors"

	"go.temporal.io/sdk/temporal"
)

// FailureDetails finds the ApplicationError of type errType in err's chain (an
// activity, update or workflow failure wrapping it) and decodes its details
// into details; false when there is none, or it has no details that decode.
func FailureDetails(err error, errType string, details any) bool {
	for err != nil {
		var app *temporal.ApplicationError
		if !errors.As(err, &app) {
			return false
		}
		if app.Type() == errType {
			return app.HasDetails() && app.Details(details) == nil
		}
		err = app.Unwrap()
	}
	return false
}
