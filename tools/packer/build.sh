#!/usr/bin/env bash
# Build the pinned packer CLI (see go.mod in this directory) into OUTDIR/packer.
#
# Usage: tools/packer/build.sh OUTDIR
#
# Needs only a Go toolchain and access to the Go module proxy (GOPROXY);
# go.sum pins every module, so the build runs with -mod=readonly (tools/gobuild.sh).
# The build is skipped when OUTDIR/packer already reports the pinned version.
set -euo pipefail

PACKER_VERSION=1.12.0
# Commit of the v1.12.0 tag (from the module proxy's .info Origin.Hash);
# stamped into the binary the same way the upstream release build does.
PACKER_COMMIT=754c622ca347bec460b7e98eb1bcbdea1c845e86

if [[ $# -ne 1 || -z "$1" ]]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi

here=$(dirname -- "${BASH_SOURCE[0]}")
export CHECKPOINT_DISABLE=1
exec bash "$here/../gobuild.sh" "$here" "$1" packer "Packer v$PACKER_VERSION" \
	github.com/hashicorp/packer \
	"-X github.com/hashicorp/packer/version.GitCommit=$PACKER_COMMIT" \
	version
