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
# prometheus: promtool checks the worker's /metrics, and a Prometheus server scrapes a
#   running worker for a canary's prometheus analysis (internal/app, realclients tests).
#   The tests start their own server (temp dir, loopback port); Debian's packaged service
#   is not needed, and where systemd runs, this script stops and disables it.
# skopeo: the OCI images a bake with format: oci writes (oci-layout, docker-archive) are
#   read back with `skopeo inspect` (internal/ociimage, starter tests).
# ansible: a bake's provision step {ansible: site.yml} runs ansible-playbook -c local
#   (starter's TestBakeWithAnAnsiblePlaybook, examples/hello/bake-ansible.yaml).
# qemu-system-x86, qemu-utils, linux-image-cloud-amd64, busybox-static, e2fsprogs: bakes
#   with format: vm write an ext4 root disk (mkfs.ext4 -d) with a busybox init as qcow2
#   (qemu-img), booting Debian's cloud kernel; the qemu provider runs them as VMs
#   (internal/vmimage, internal/provider/qemu). Installing the kernel package runs
#   update-initramfs; imago writes its own small initrd.
# libvirt-daemon, libvirt-daemon-driver-qemu: the libvirt provider's tests start a private,
#   unprivileged libvirtd of their own (internal/provider/libvirt/libvirtdtest: session
#   mode, its socket and state in a temp dir, run as nobody when the tests run as root)
#   and boot the VM images as libvirt domains through its QEMU driver;
#   the script installs no recommends, and nothing else is needed: no libvirt-daemon-system
#   (its systemd units, the libvirt-qemu user, the system daemon), no dnsmasq, no DBus.
PACKAGES=(nats-server chromium postgresql prometheus skopeo ansible qemu-system-x86 qemu-utils linux-image-cloud-amd64 busybox-static e2fsprogs libvirt-daemon libvirt-daemon-driver-qemu)

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

# Debian's prometheus package enables a prometheus.service listening on :9090. The
# tests run their own servers; a packaged one would only hold the port and scrape, so
# it is stopped and disabled where systemd runs. Without systemd (containers, CI
# sandboxes) invoke-rc.d does not start it.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
	"${SUDO[@]}" systemctl disable --now prometheus.service || true
fi
