#!/bin/sh
# Prepare a CI machine for gd-doctor's real-systemd tests (needs root and the network).
# Installs the tools and builds the cached debootstrap roots in $GD_DOCTOR_CACHE
# (default /var/cache/gd-doctor-tests). The test run itself needs no network afterwards.
#
#   sh tests/harness/ci_prepare.sh            # bookworm (required) + bullseye, trixie (optional)
#   GD_DOCTOR_SUITES="bookworm" sh tests/harness/ci_prepare.sh
set -eu
cd "$(dirname "$0")/../.."

export DEBIAN_FRONTEND=noninteractive
apt_install() {
    i=0
    # another apt may hold the lock for a while on shared machines
    until timeout 900 apt-get install -y -q --no-install-recommends "$@"; do
        i=$((i + 1)); [ "$i" -ge 20 ] && return 1; sleep 10
    done
}
timeout 600 apt-get update -q
apt_install debootstrap systemd-container systemd-journal-remote iproute2 util-linux mount \
    debian-archive-keyring python3

PY=${PYTHON:-python3}
required=${GD_DOCTOR_SUITES:-bookworm}
optional=${GD_DOCTOR_OPTIONAL_SUITES-bullseye trixie}
args=""
for s in $required; do args="$args --suite $s"; done
for s in $optional; do args="$args --optional $s"; done
# shellcheck disable=SC2086
timeout 3600 "$PY" -m tests.harness.container prepare $args
"$PY" -m tests.harness.container status || true
