#!/usr/bin/env bash
# Build the pinned Temporal CLI (see go.mod in this directory) into OUTDIR/temporal.
#
# Usage: tools/temporal/build.sh OUTDIR
#
# Needs only a Go toolchain and access to the Go module proxy (GOPROXY);
# go.sum pins every module, so the build runs with -mod=readonly. The build
# is skipped when OUTDIR/temporal already reports the pinned version.
#
# Why v1.5.1: it is the newest release the module proxy serves that builds from
# the proxy alone. v1.9.1 is served too, but its go.mod replaces
# github.com/temporalio/cli/cliext with a local directory, a module the proxy
# does not serve, so `go build` of it outside its own repository fails. The CLI
# speaks Temporal's stable gRPC API; v1.5.1 talks to imago's embedded
# go.temporal.io/server v1.32 (internal/realclients tests it).
set -euo pipefail

TEMPORAL_CLI_VERSION=1.5.1

if [[ $# -ne 1 || -z "$1" ]]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi

mkdir -p -- "$1"
outdir=$(cd -- "$1" && pwd -P)
bin="$outdir/temporal"

if [[ -x "$bin" ]]; then
	have=$("$bin" --version 2>/dev/null | head -n1 || true)
	if [[ "$have" == "temporal version $TEMPORAL_CLI_VERSION "* ]]; then
		echo "temporal: $bin is already $have; skipping build" >&2
		exit 0
	fi
fi

cd -- "$(dirname -- "${BASH_SOURCE[0]}")"

# GOWORK=off: ignore any go.work above us; this module stands alone.
# GOFLAGS is reset so a caller's -mod=vendor etc. cannot leak in.
# CGO_ENABLED=0: static binary, no C compiler needed (upstream releases are
# built the same way, with the version stamped by the same -X flag).
tmp="$bin.tmp.$$"
trap 'rm -f -- "$tmp"' EXIT
echo "temporal: building v$TEMPORAL_CLI_VERSION into $bin" >&2
GOWORK=off GOFLAGS= CGO_ENABLED=0 go build \
	-mod=readonly \
	-trimpath \
	-ldflags "-X github.com/temporalio/cli/temporalcli.Version=$TEMPORAL_CLI_VERSION" \
	-o "$tmp" \
	github.com/temporalio/cli/cmd/temporal
mv -f -- "$tmp" "$bin"
trap - EXIT

"$bin" --version >&2
