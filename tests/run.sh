#!/usr/bin/env bash
# Install everything gd-doctor's whole test suite needs, then run it:
#   bash tests/run.sh            (as root: apt packages, debootstrapped roots, namespaces)
#
# 1. prepare (needs the network): apt packages, a virtualenv with the test extra, the cached
#    debootstrap roots for the real-systemd tests, the built packages and their test roots;
# 2. lint: ruff and mypy;
# 3. test (offline): the whole pytest suite inside a network namespace that has only loopback,
#    which proves no test reaches beyond the machine.
# Set GD_DOCTOR_SKIP_PREPARE=1 to reuse an earlier preparation; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)
export GD_DOCTOR_CACHE="${GD_DOCTOR_CACHE:-/var/cache/gd-doctor-tests}"
VENV="${GD_DOCTOR_VENV:-$TOP/.venv}"
PY="$VENV/bin/python"
say() { printf '\n== tests/run.sh: %s\n' "$*"; }

is_root() { [ "$(id -u)" = 0 ]; }

apt_packages=(
    python3 python3-venv python3-dev gcc pkg-config libsystemd-dev
    systemd systemd-container systemd-journal-remote debootstrap debian-archive-keyring
    iproute2 util-linux mount procps strace
    rpm rpmlint lintian shellcheck fakeroot cpio binutils binutils-aarch64-linux-gnu
    jq tmux
)

if [ "${GD_DOCTOR_SKIP_PREPARE:-0}" != 1 ]; then
    if is_root && command -v apt-get >/dev/null; then
        say "installing apt packages"
        export DEBIAN_FRONTEND=noninteractive
        timeout 900 apt-get update -q
        timeout 1800 apt-get install -y -q --no-install-recommends "${apt_packages[@]}"
    else
        say "not root or no apt-get: apt packages not installed; root-only tests will skip"
    fi
    say "virtualenv $VENV with gd-doctor and its test extra"
    [ -x "$PY" ] || python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -e ".[test,journal]" || {
        say "systemd-python did not build; installing without it (journalctl path only)"
        "$PY" -m pip install -q -e ".[test]"
    }
    if is_root; then
        say "real-systemd test roots"
        PYTHON="$PY" sh tests/harness/ci_prepare.sh
        if [ -f packaging/ci.sh ]; then
            say "packages and their test roots"
            GD_DOCTOR_PREPARE_ONLY=1 PYTHON="$PY" sh packaging/ci.sh
        fi
        say "simulator: vendored dependencies for gd-doctor inside the simulated hosts"
        "$PY" -m tests.simulator prepare
    fi
fi

say "ruff"
lint_paths=(gd_doctor tests); [ -d benchmarks ] && lint_paths+=(benchmarks)
"$PY" -m ruff check "${lint_paths[@]}"
say "ruff format (check)"
"$PY" -m ruff format --check "${lint_paths[@]}"
say "mypy"
"$PY" -m mypy

say "pytest (offline: a network namespace with only loopback)"
pytest_cmd=("$PY" -m pytest -ra "$@")
if is_root && unshare -n true 2>/dev/null; then
    unshare -n bash -c 'ip link set lo up && exec "$@"' _ "${pytest_cmd[@]}"
else
    say "cannot unshare the network namespace (not root?): running on the host network"
    "${pytest_cmd[@]}"
fi
