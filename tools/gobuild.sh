#!/usr/bin/env bash
# Build a pinned Go command from a tools module (tools/packer, tools/temporal: a
# go.mod that requires the command's module at an exact version) into OUTDIR/NAME,
# unless OUTDIR/NAME already reports the pinned version.
#
# Usage: tools/gobuild.sh MODDIR OUTDIR NAME WANT PKG LDFLAGS [VERSION-ARG...]
#
#   MODDIR        the tools module's directory (its go.mod and go.sum pin every module)
#   NAME          the binary's name in OUTDIR
#   WANT          a bash pattern the first line of `NAME VERSION-ARG...` matches when
#                 the binary is the pinned version (then the build is skipped)
#   PKG           the main package to build
#   LDFLAGS       -ldflags, e.g. the version stamp the upstream release build sets
#
# Needs only a Go toolchain and access to the Go module proxy (GOPROXY). GOWORK=off
# ignores any go.work above the module; GOFLAGS is reset so a caller's -mod=vendor
# etc. cannot leak in; -mod=readonly builds exactly what go.sum pins; CGO_ENABLED=0
# makes a static binary with no C compiler needed, as upstream releases are built.
set -euo pipefail

if [[ $# -lt 6 || -z "$2" ]]; then
	echo "usage: $0 MODDIR OUTDIR NAME WANT PKG LDFLAGS [VERSION-ARG...]" >&2
	exit 2
fi
moddir=$1 outdir=$2 name=$3 want=$4 pkg=$5 ldflags=$6
shift 6

mkdir -p -- "$outdir"
outdir=$(cd -- "$outdir" && pwd -P)
bin="$outdir/$name"

if [[ -x "$bin" ]]; then
	have=$("$bin" "$@" 2>/dev/null | head -n1 || true)
	# shellcheck disable=SC2053 # WANT is a pattern
	if [[ "$have" == $want ]]; then
		echo "$name: $bin is already $have; skipping build" >&2
		exit 0
	fi
fi

cd -- "$moddir"
tmp="$bin.tmp.$$"
trap 'rm -f -- "$tmp"' EXIT
echo "$name: building $pkg into $bin" >&2
GOWORK=off GOFLAGS= CGO_ENABLED=0 go build \
	-mod=readonly \
	-trimpath \
	-ldflags "$ldflags" \
	-o "$tmp" \
	"$pkg"
mv -f -- "$tmp" "$bin"
trap - EXIT

"$bin" "$@" >&2
