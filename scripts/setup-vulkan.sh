#!/usr/bin/env bash
# Installs a Vulkan driver for machines without a GPU: Mesa's lavapipe.
#
# Debian 12's stable Mesa (22.3) works but is 3-5x slower and reports a 2 GiB heap;
# Mesa 25 from bookworm-backports is preferred where that suite is reachable.
# Safe to run repeatedly; does nothing when a lavapipe ICD is already installed,
# unless SEAM_FORCE_MESA=1. Needs root (or sudo) for apt-get.
set -euo pipefail

log() { echo "[setup-vulkan] $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        log "not root and no sudo: install mesa-vulkan-drivers and libvulkan1 yourself"; exit 1
    fi
else
    SUDO=
fi

have_lavapipe() {
    ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && ldconfig -p | grep -q 'libvulkan.so.1'
}

if have_lavapipe && [ "${SEAM_FORCE_MESA:-0}" != 1 ]; then
    log "lavapipe already installed: $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo unknown)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    log "no apt-get: install your distribution's Mesa Vulkan drivers (lavapipe) and the Vulkan loader"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
backports=/etc/apt/sources.list.d/seam-bookworm-backports.sources
codename=$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")

# Make a backports stanza from the main stanza of debian.sources: same URIs and
# Signed-By, one stanza only (copying the security stanza breaks apt-get update).
if [ "$codename" = bookworm ] && [ ! -f "$backports" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
    awk -v RS= 'NR==1' /etc/apt/sources.list.d/debian.sources \
        | grep -E '^(Types|URIs|Components|Signed-By):' > /tmp/seam-backports.$$ || true
    if grep -q '^URIs:' /tmp/seam-backports.$$; then
        echo "Suites: bookworm-backports" >> /tmp/seam-backports.$$
        $SUDO cp /tmp/seam-backports.$$ "$backports"
        log "added $backports"
    fi
    rm -f /tmp/seam-backports.$$
fi

if ! $SUDO apt-get update -qq; then
    log "apt-get update failed with backports; retrying without"
    $SUDO rm -f "$backports"
    $SUDO apt-get update -qq
fi

if [ -f "$backports" ] && $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null; then
    log "installed Mesa from bookworm-backports"
else
    log "backports unavailable: installing stable Mesa"
    $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
log "mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
