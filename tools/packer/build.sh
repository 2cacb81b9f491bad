#!/usr/bin/env bash
# Build the pinned packer CLI (see go.mod in this directory) into OUTDIR/packer.
#
# Usage: tools/packer/build.sh OUTDIR
#
# Needs only a Go toolchain and access to the Go module proxy (GOPROXY);
# go.sum pins every module, so the build runs with -mod=readonly. The build
# is skipped when OUTDIR/packer already reports the pinned version.
set -euo pipefail

PACKER_VERSION=1.12.0
# Commit of the v1.12.0 tag (from the module proxy's .info Origin.Hash);
# stamped into the binary the same way the upstream release build does.
PACKER_COMMIT=754c622ca347bec460b7e98eb1bcbdea1c845e86

if [[ $# -ne 1 || -z "$1" ]]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi

mkdir -p -- "$1"
outdir=$(cd -- "$1" && pwd -P)
bin="$outdir/packer"

if [[ -x "$bin" ]]; then
	have=$(CHECKPOINT_DISABLE=1 "$bin" version 2>/dev/null | head -n1 || true)
	if [[ "$have" == "Packer v$PACKER_VERSION" ]]; then
		echo "packer: $bin is already $have; skipping build" >&2
		exit 0
	fi
fi

cd -- "$(dirname -- "${BASH_SOURCE[0]}")"

# GOWORK=off: ignore any go.work above us; this module stands alone.
# GOFLAGS is reset so a caller's -mod=vendor etc. cannot leak in.
# CGO_ENABLED=0: static binary, no C compiler needed (upstream releases are
# built the same way).
tmp="$bin.tmp.$$"
trap 'rm -f -- "$tmp"' EXIT
echo "packer: building v$PACKER_VERSION into $bin" >&2
GOWORK=off GOFLAGS= CGO_ENABLED=0 go build \
	-mod=readonly \
	-trimpath \
	-ldflags "-X github.com/hashicorp/packer/version.GitCommit=$PACKER_COMMIT" \
	-o "$tmp" \
	github.com/hashicorp/packer
mv -f -- "$tmp" "$bin"
trap - EXIT

CHECKPOINT_DISABLE=1 "$bin" version >&2
