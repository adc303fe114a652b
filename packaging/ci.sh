#!/bin/sh
# What CI runs for packaging (as root, on Debian 12): bash packaging/ci.sh
#
# 1. network phase: install the tools, build the four packages, debootstrap (or reuse) the
#    cached Debian 11 and 12 roots, and fetch the Python 3.9 test dependencies;
# 2. offline phase: run tests/packaging in a network namespace that has only loopback.
# Caches live in $GD_DOCTOR_CACHE (default /var/cache/gd-doctor-tests); a warm run takes ~2 min,
# a cold one ~6 min. PYTHON names the interpreter with pytest and jsonschema (default python3).
set -eu

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
export GD_DOCTOR_CACHE="${GD_DOCTOR_CACHE:-/var/cache/gd-doctor-tests}"
PYTHON=${PYTHON:-python3}
say() { echo "packaging/ci.sh: $*"; }

# --- tools (Debian 12 names; rpmlint and lintian are in bookworm main) -----------------------
TOOLS="rpm rpmlint lintian debootstrap shellcheck binutils binutils-aarch64-linux-gnu
    fakeroot cpio iproute2 util-linux"
need_install=""
for t in rpmbuild rpmlint lintian debootstrap shellcheck strip aarch64-linux-gnu-strip \
    fakeroot cpio ip unshare; do
    command -v "$t" >/dev/null 2>&1 || need_install=1
done
if [ -n "$need_install" ]; then
    say "installing tools"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $TOOLS \
        >/dev/null
fi
"$PYTHON" -c 'import pytest, jsonschema' 2>/dev/null ||
    "$PYTHON" -m pip install -q pytest jsonschema

# --- build and test roots (network) ----------------------------------------------------------
sh packaging/build.sh
sh packaging/testroots.sh bullseye bookworm

# Python 3.9 test dependencies for running the project's tests inside the Debian 11 root:
# pytest & co. from pyproject's "test" extra (linters and type stubs left out). The runtime
# dependencies come from the package's own vendored tree.
deps_dir="$GD_DOCTOR_CACHE/packaging/py39-testdeps"
reqs=$("$PYTHON" - <<'PY'
import re
try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None
skip = re.compile(r"^(ruff|mypy|types-)")
reqs = ["pytest>=7", "jsonschema>=4", "hypothesis>=6", "trustme>=1.0"]
if tomllib is not None:
    with open("pyproject.toml", "rb") as f:
        extra = tomllib.load(f).get("project", {}).get("optional-dependencies", {})
    reqs = [r for r in extra.get("test", reqs) if not skip.match(r)]
print(" ".join(sorted(reqs)))  # the cache is refetched when this list changes
PY
)
reqs_key="glibc2.31 $reqs"
if [ "$(cat "$deps_dir/.reqs" 2>/dev/null || true)" != "$reqs_key" ]; then
    say "fetching Python 3.9 test dependencies: $reqs"
    rm -rf "$deps_dir"
    py39=""
    for p in /root/.pyenv/versions/3.9.*/bin/python3.9 /usr/bin/python3.9; do
        [ -x "$p" ] && py39=$p
    done
    # Wheels must load on Debian 11 (glibc 2.31), not only on this host.
    [ -n "$py39" ] || py39=$PYTHON
    # shellcheck disable=SC2086
    "$py39" -m pip install -q --disable-pip-version-check --target "$deps_dir" \
        --only-binary=:all: --python-version 3.9 --implementation cp \
        --platform "manylinux_2_28_$(uname -m)" --platform "manylinux2014_$(uname -m)" \
        --platform any $reqs
    printf '%s' "$reqs_key" >"$deps_dir/.reqs"
fi

if [ "${GD_DOCTOR_PREPARE_ONLY:-0}" = 1 ]; then
    say "prepared (GD_DOCTOR_PREPARE_ONLY=1): tests/packaging runs in the main offline pytest"
    exit 0
fi

# --- tests (offline) -------------------------------------------------------------------------
say "running tests/packaging offline"
set -- "$PYTHON" -m pytest -p no:cacheprovider -rs -o addopts="" tests/packaging
if unshare -n true 2>/dev/null; then
    # shellcheck disable=SC2016
    exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
fi
say "unshare -n is not available: running without a network namespace"
exec "$@"
