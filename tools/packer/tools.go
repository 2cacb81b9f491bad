//go:build tools

// Package tools pins the packer CLI as a dependency of this wrapper module so
// that `go build github.com/hashicorp/packer` (see build.sh) is reproducible
// from go.mod/go.sum alone. Nothing here is compiled into imago.
package tools

import (
	_ "github.com/hashicorp/packer"
)
