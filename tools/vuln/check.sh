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
# database goes to OUTDIR/vulndb/VERSION and is built once per pinned version.
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

# The database, from the OSV files of the pinned vulndb module.
db="$outdir/vulndb/$vulndb_version"
if [[ ! -f "$db/index/db.json.gz" ]]; then
	tools_go mod download golang.org/x/vulndb
	osv="$(tools_go list -mod=readonly -m -f '{{.Dir}}' golang.org/x/vulndb)/data/osv"
	echo "vulncheck: building the vulnerability database $db from $osv" >&2
	tmp="$db.tmp.$$"
	trap 'rm -rf -- "$tmp"' EXIT
	rm -rf -- "$db"
	"$outdir/indexdb" -vulns "$osv" -out "$tmp"
	mv -- "$tmp" "$db"
	trap - EXIT
	# Earlier versions' databases are of no further use.
	find "$outdir/vulndb" -mindepth 1 -maxdepth 1 ! -name "$vulndb_version" -exec rm -rf -- {} +
fi

echo "vulncheck: govulncheck $vuln_version, database golang.org/x/vulndb@$vulndb_version, $(go env GOVERSION)" >&2
"$outdir/govulncheck" -db "file://$db" "${patterns[@]}"
