#!/bin/sh
# Prepare the cached Debian roots the packaging tests install into (needs network and root).
#
#   packaging/testroots.sh [bullseye] [bookworm]
#
# Roots go to "${GD_DOCTOR_CACHE:-/var/cache/gd-doctor-tests}/packaging/roots/<suite>" (the
# container tests keep their own, different roots in .../roots/). A root that is
# already complete (marker file .gd-doctor-root-ok) is kept. The tests copy a root before they
# change it, so the cached one stays pristine and is reused by later runs and other modules.
set -eu

CACHE="${GD_DOCTOR_CACHE:-/var/cache/gd-doctor-tests}/packaging"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

die() { echo "testroots: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and chroot need it)"
command -v debootstrap >/dev/null 2>&1 || die "missing tool: debootstrap (apt-get install debootstrap)"

# Packages each root gets: python3 (the interpreter gd-doctor runs on) and python3-systemd
# (the weak dependency) on bullseye, whose Python 3.9.2 is the supported floor.
includes() {
    case "$1" in
        bullseye) echo "python3,python3-systemd" ;;
        *) echo "python3" ;;
    esac
}

make_root() {
    suite=$1
    dest="$CACHE/roots/$suite"
    if [ -f "$dest/.gd-doctor-root-ok" ]; then
        echo "testroots: $suite root already in $dest"
        return 0
    fi
    rm -rf "$dest.tmp"
    mkdir -p "$CACHE/roots"
    echo "testroots: debootstrap $suite into $dest"
    if ! debootstrap --variant=minbase --include="$(includes "$suite")" \
            "$suite" "$dest.tmp" "$MIRROR" >"$CACHE/roots/$suite.log" 2>&1; then
        tail -20 "$CACHE/roots/$suite.log" >&2
        die "debootstrap $suite failed (log: $CACHE/roots/$suite.log)"
    fi
    # Keep the root small and offline-friendly: no package lists, no downloaded .debs.
    rm -rf "$dest.tmp/var/cache/apt/archives/"*.deb "$dest.tmp/var/lib/apt/lists/"*_Packages
    chroot "$dest.tmp" /usr/bin/python3 -c 'import sys; print(sys.version)' \
        >"$dest.tmp/.gd-doctor-python-version"
    touch "$dest.tmp/.gd-doctor-root-ok"
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
    echo "testroots: $suite ready (Python $(head -1 "$dest/.gd-doctor-python-version"))"
}

if [ $# -eq 0 ]; then
    set -- bullseye bookworm
fi
for s in "$@"; do
    make_root "$s"
done
