#!/usr/bin/env bash
# Installs the Debian packages imago's tests need, idempotently: packages already
# installed are skipped, and `apt-get update` runs only when an install fails (a
# stale package index). Run as root (or with sudo).
#
#   scripts/system-deps.sh              # every package below
#   scripts/system-deps.sh pkg ...      # just these
set -euo pipefail

# nats-server: internal/events tests publish rollout events through a real NATS server.
# chromium: internal/uitest drives the Temporal web UI in a headless browser (chromedp).
# postgresql: internal/pgtest runs Temporal on a real PostgreSQL (started by scripts/postgres.sh).
PACKAGES=(nats-server chromium postgresql)

if [ "$#" -gt 0 ]; then
	PACKAGES=("$@")
fi

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -eq 0 ]; then
	echo "system-deps: all installed (${PACKAGES[*]})"
	exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
echo "system-deps: installing ${missing[*]}"
if ! "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
	echo "system-deps: install failed; refreshing the package index and retrying"
	"${SUDO[@]}" apt-get update
	"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
