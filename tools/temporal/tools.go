//go:build tools

// Package tools pins the Temporal CLI as a dependency of this wrapper module so
// that `go build github.com/temporalio/cli/cmd/temporal` (see build.sh) is
// reproducible from go.mod/go.sum alone. Nothing here is compiled into imago.
package tools

import (
	_ "github.com/temporalio/cli/cmd/temporal"
)
