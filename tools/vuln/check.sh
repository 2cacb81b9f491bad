#!/usr/bin/env bash
# Check the Go module in the current directory for known vulnerabilities that its
# code can reach, against a local copy of the Go vulnerability database.
#
# Usage: tools/vuln/check.sh OUTDIR [PATTERN...]     (PATTERN defaults to ./...)
#
# The database's web service cannot be reached from every machine that runs this,
# so the database is built locally: golang.org/x/vulndb, pinned in this directory's
# go.mod, carries the database's OSV reports (data/osv) and cmd/indexdb, which turns
# them into a database that govulncheck reads with -db file://DIR. Both govulncheck
# (golang.org/x/vuln, pinned in go.mod too) and indexdb are built into OUTDIR; the
# database is built once per pinned version and set of corrections, into the user's
# cache directory ($XDG_CACHE_HOME or ~/.cache: imago/vulndb/VERSION-FIXES), so a
# fresh clone on the same machine (CI) reuses it; without a HOME, into OUTDIR/vulndb.
#
# Corrections: osv-fixes/ holds reports of the pinned database that are known to be
# wrong, each corrected (osv-fixes/README.md says what and why, and what the upstream
# report said), and upstream.sha256, the checksums of the upstream reports they
# replace. The database is built from the upstream reports with these in their place;
# if the pinned vulndb's report differs from the one a correction was made from, this
# script stops: review the correction (drop it if upstream now has it right).
#
# Before the scan, a canary (canary/: a module on an echo release with known
# vulnerabilities) must be reported as vulnerable, so a broken database fails loudly.
#
# Exits 0 when no reachable (symbol-level) vulnerability is found. Otherwise
# govulncheck prints each reachable one with the call path that reaches it and this
# script exits non-zero (govulncheck's 3 for findings, 1 for any other failure).
# Findings in modules or packages the code imports but never calls are not failures;
# govulncheck names how many there are.
set -euo pipefail

if [[ $# -lt 1 || -z "$1" ]]; then
	echo "usage: $0 OUTDIR [PATTERN...]" >&2
	exit 2
fi

mkdir -p -- "$1"
outdir=$(cd -- "$1" && pwd -P)
shift
patterns=("$@")
[[ ${#patterns[@]} -gt 0 ]] || patterns=(./...)

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)

# GOWORK=off: this module stands alone. GOFLAGS is reset so a caller's
# -mod=vendor etc. cannot leak in. -mod=readonly: go.sum pins every module.
tools_go() { (cd -- "$here" && GOWORK=off GOFLAGS= go "$@"); }

vulndb_version=$(tools_go list -mod=readonly -m -f '{{.Version}}' golang.org/x/vulndb)
vuln_version=$(tools_go list -mod=readonly -m -f '{{.Version}}' golang.org/x/vuln)

# govulncheck and indexdb. go build is a no-op on a warm build cache, but it still
# links; skip it when the binary is already the pinned version's.
build_tool() { # NAME PACKAGE MODULE_VERSION
	local name=$1 pkg=$2 want=$3 bin="$outdir/$1"
	if [[ -x "$bin" ]] && tools_go version -m "$bin" 2>/dev/null | grep -qE "^[[:space:]]+(mod|dep)[[:space:]]+${pkg%%/cmd/*}[[:space:]]+${want}([[:space:]]|$)"; then
		return
	fi
	echo "vulncheck: building $name ($pkg@$want) into $bin" >&2
	tools_go build -mod=readonly -trimpath -o "$bin.tmp.$$" "$pkg"
	mv -f -- "$bin.tmp.$$" "$bin"
}
build_tool govulncheck golang.org/x/vuln/cmd/govulncheck "$vuln_version"
build_tool indexdb golang.org/x/vulndb/cmd/indexdb "$vulndb_version"

# The database, from the OSV files of the pinned vulndb module and the corrections.
fixes="$here/osv-fixes"
fixes_sum=$(cd -- "$fixes" && cat -- upstream.sha256 *.json | sha256sum | cut -c1-12)
if [[ -n "${XDG_CACHE_HOME:-}" ]]; then
	dbroot="$XDG_CACHE_HOME/imago/vulndb"
elif [[ -n "${HOME:-}" ]]; then
	dbroot="$HOME/.cache/imago/vulndb"
else
	dbroot="$outdir/vulndb"
fi
db="$dbroot/$vulndb_version-$fixes_sum"
if [[ ! -f "$db/index/db.json.gz" ]]; then
	tools_go mod download golang.org/x/vulndb
	osv="$(tools_go list -mod=readonly -m -f '{{.Dir}}' golang.org/x/vulndb)/data/osv"
	if ! (cd -- "$osv" && sha256sum --quiet --strict -c -- "$fixes/upstream.sha256"); then
		echo "vulncheck: golang.org/x/vulndb@$vulndb_version changed a report that $fixes corrects: review the correction (see its README.md)" >&2
		exit 1
	fi
	echo "vulncheck: building the vulnerability database $db from $osv and $fixes" >&2
	tmp="$db.tmp.$$"
	trap 'rm -rf -- "$tmp"' EXIT
	mkdir -p -- "$tmp/osv"
	cp -- "$osv"/*.json "$tmp/osv/"
	cp -f -- "$fixes"/*.json "$tmp/osv/"
	"$outdir/indexdb" -vulns "$tmp/osv" -out "$tmp/db"
	# A run beside this one may have finished the same database first: keep either.
	mv -T -- "$tmp/db" "$db" 2>/dev/null || [[ -f "$db/index/db.json.gz" ]]
	rm -rf -- "$tmp"
	trap - EXIT
fi

# The canary: a module on a vulnerable echo must be reported, with each ID in
# canary/expect.txt, so an empty or broken database cannot pass for a clean scan.
canary_out=$(cd -- "$here/canary" && GOWORK=off GOFLAGS= "$outdir/govulncheck" -db "file://$db" ./... 2>&1) && rc=0 || rc=$?
missing=$(grep -vxF -f <(grep -oE '^Vulnerability #[0-9]+: GO-[0-9]+-[0-9]+' <<<"$canary_out" | sed 's/.*: //') -- "$here/canary/expect.txt" || true)
if [[ $rc -ne 3 || -n "$missing" ]]; then
	printf '%s\n' "$canary_out" >&2
	echo "vulncheck: the database failed its canary (govulncheck exit $rc, expected 3; not reported: ${missing:-none}): $db" >&2
	exit 1
fi

echo "vulncheck: govulncheck $vuln_version, database golang.org/x/vulndb@$vulndb_version with corrections to $(cd -- "$fixes" && ls -- *.json | sed 's/\.json$//' | paste -sd' '), $(go env GOVERSION)" >&2
"$outdir/govulncheck" -db "file://$db" "${patterns[@]}"
