//go:build !imago_crash

package crash

import "go.temporal.io/sdk/interceptor"

// Enabled tells whether this binary has the hook (built with -tags imago_crash).
const Enabled = false

// FromEnv returns nil: this binary was built without the imago_crash tag, so
// IMAGO_CRASH_AT cannot kill it.
func FromEnv() (interceptor.WorkerInterceptor, error) { return nil, nil }
