#!/bin/sh
# Step installGdDoctor: optionally install or upgrade gd-doctor from a package in S3.
# installFrom is empty (skip), an s3:// prefix holding the packages as built
# (gd-doctor_<version>_<amd64|arm64>.deb, gd-doctor-<version>.<x86_64|aarch64>.rpm; needs the
# AWS CLI and read access for the instance profile), or an https:// URL of one package (e.g. a
# pre-signed S3 URL; fetched with python3). Installs with dpkg or rpm only: no repository needed.
if [ -z "${SSM_installFrom+x}" ]; then SSM_installFrom='{{ installFrom }}'; fi
src=$SSM_installFrom
if [ -z "$src" ]; then
    echo "installFrom is empty: using the gd-doctor already installed"
    exit 0
fi

if [ -f /var/lib/dpkg/status ] && command -v dpkg >/dev/null 2>&1; then
    family=deb
elif command -v rpm >/dev/null 2>&1; then
    family=rpm
else
    echo "gd-doctor install: neither dpkg nor rpm found" >&2
    exit 3
fi
case $(uname -m) in
    x86_64) debarch=amd64 rpmarch=x86_64 ;;
    aarch64) debarch=arm64 rpmarch=aarch64 ;;
    *) echo "gd-doctor install: unsupported architecture $(uname -m)" >&2; exit 3 ;;
esac

tmp=$(mktemp -d /tmp/gd-doctor-install.XXXXXX) || exit 3
trap 'rm -rf "$tmp"' EXIT

case $src in
    s3://*)
        aws=$(command -v aws || true)
        [ -n "$aws" ] || { echo "gd-doctor install: the AWS CLI is needed for s3:// sources; use a pre-signed https:// URL instead" >&2; exit 3; }
        prefix=${src%/}/
        if [ "$family" = deb ]; then pattern="gd-doctor_.*_${debarch}\\.deb"; else pattern="gd-doctor-.*\\.${rpmarch}\\.rpm"; fi
        name=$("$aws" s3 ls "$prefix" | awk '{print $4}' | grep -E "^${pattern}\$" | sort -V | tail -1)
        [ -n "$name" ] || { echo "gd-doctor install: no $family package for $(uname -m) under $prefix" >&2; exit 3; }
        "$aws" s3 cp --only-show-errors "$prefix$name" "$tmp/$name" || exit 3
        pkg=$tmp/$name
        ;;
    https://*)
        name=${src%%\?*}
        name=${name##*/}
        case $name in *.deb|*.rpm) ;; *) name="gd-doctor.$family" ;; esac
        py=""
        for p in /usr/bin/python3 /usr/bin/python3.9 /usr/bin/python3.11; do
            [ -x "$p" ] && { py=$p; break; }
        done
        [ -n "$py" ] || { echo "gd-doctor install: no python3 to download with" >&2; exit 3; }
        "$py" -I -c 'import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f)' "$src" "$tmp/$name" || exit 3
        pkg=$tmp/$name
        ;;
    *)
        echo "gd-doctor install: installFrom must start with s3:// or https://" >&2
        exit 2
        ;;
esac

case $pkg in
    *.deb) dpkg -i "$pkg" || exit 3 ;;
    *.rpm) rpm -U --replacepkgs "$pkg" || exit 3 ;;
    *) echo "gd-doctor install: $pkg is neither a .deb nor an .rpm" >&2; exit 3 ;;
esac
/usr/bin/gd-doctor --version
