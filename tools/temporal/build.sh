#!/usr/bin/env bash
# Build the pinned Temporal CLI (see go.mod in this directory) into OUTDIR/temporal.
#
# Usage: tools/temporal/build.sh OUTDIR
#
# Needs only a Go toolchain and access to the Go module proxy (GOPROXY);
# go.sum pins every module, so the build runs with -mod=readonly (tools/gobuild.sh).
# The build is skipped when OUTDIR/temporal already reports the pinned version.
#
# Why v1.5.1: it is the newest release the module proxy serves that builds from
# the proxy alone. v1.9.1 is served too, but its go.mod replaces
# github.com/temporalio/cli/cliext with a local directory, a module the proxy
# does not serve, so `go build` of it outside its own repository fails. The CLI
# speaks Temporal's stable gRPC API; v1.5.1 talks to imago's embedded
# go.temporal.io/server v1.32 (internal/app, TestTemporalCLIReadsARolloutThroughTheCodecServer).
set -euo pipefail

TEMPORAL_CLI_VERSION=1.5.1

if [[ $# -ne 1 || -z "$1" ]]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi

here=$(dirname -- "${BASH_SOURCE[0]}")
# The version stamp is the one the upstream release build sets (.goreleaser.yml).
exec bash "$here/../gobuild.sh" "$here" "$1" temporal "temporal version $TEMPORAL_CLI_VERSION *" \
	github.com/temporalio/cli/cmd/temporal \
	"-X github.com/temporalio/cli/temporalcli.Version=$TEMPORAL_CLI_VERSION" \
	--version
