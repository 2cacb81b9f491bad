//go:build tools

// Package tools pins govulncheck and the Go vulnerability database's indexdb
// command as dependencies of this wrapper module, so that check.sh builds both
// from go.mod/go.sum alone. golang.org/x/vulndb also carries the database's
// OSV files (data/osv), from which check.sh builds a local database.
// Nothing here is compiled into imago.
package tools

import (
	_ "golang.org/x/vuln/cmd/govulncheck"
	_ "golang.org/x/vulndb/cmd/indexdb"
)
