#!/bin/sh
# Step installGdDoctor: optionally install or upgrade gd-doctor, picking the package that fits
# this instance, so one run covers a mixed fleet. installFrom is:
#   empty                     skip: use the gd-doctor already installed;
#   s3://bucket/prefix/       the packages as built (gd-doctor_<version>_<amd64|arm64>.deb,
#                             gd-doctor-<version>.<x86_64|aarch64>.rpm); needs the AWS CLI and
#                             s3:ListBucket + s3:GetObject for the instance profile;
#   https://host/path/        a base URL holding the same packages and build.sh's SHA256SUMS,
#                             which names them and whose hash each download must match;
#   https://.../x.deb or .rpm one package (e.g. a pre-signed S3 URL), used as it is.
# The newest version of the right format (.deb where dpkg owns the system, .rpm where rpm does)
# and architecture (uname -m) wins. Installs with dpkg or rpm only: no repository needed.
if [ -z "${SSM_installFrom+x}" ]; then SSM_installFrom='{{ installFrom }}'; fi
src=$SSM_installFrom
if [ -z "$src" ]; then
    echo "installFrom is empty: using the gd-doctor already installed"
    exit 0
fi
die() { echo "gd-doctor install: $1" >&2; exit "${2:-3}"; }

case $src in s3://*|https://*) ;; *) die "installFrom must start with s3:// or https://" 2 ;; esac
# Which package manager owns this system: each one knows itself only where it is the system's.
if dpkg-query -W dpkg >/dev/null 2>&1; then
    family=deb
elif rpm -q rpm >/dev/null 2>&1; then
    family=rpm
else
    die "neither dpkg nor rpm manages this system"
fi
machine=$(uname -m)
case $machine in
    x86_64) debarch=amd64 rpmarch=x86_64 ;;
    aarch64) debarch=arm64 rpmarch=aarch64 ;;
    *) die "unsupported architecture $machine" ;;
esac
if [ "$family" = deb ]; then
    pattern="gd-doctor_[0-9][^_/]*_${debarch}\\.deb"
else
    pattern="gd-doctor-[0-9][^/]*\\.${rpmarch}\\.rpm"
fi
echo "gd-doctor install: this instance takes the .$family package for $machine"
# The newest matching name among the names on stdin.
newest() { grep -E "^${pattern}\$" | sort -V | tail -1; }

tmp=$(mktemp -d /tmp/gd-doctor-install.XXXXXX) || exit 3
trap 'rm -rf "$tmp"' EXIT

py=""
for p in /usr/bin/python3 /usr/bin/python3.9 /usr/bin/python3.11; do
    [ -x "$p" ] && { py=$p; break; }
done
download() {  # download URL FILE
    [ -n "$py" ] || die "no python3 to download with"
    "$py" -I -c 'import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f)' "$1" "$2" || die "cannot download $1"
}

path=${src%%\?*}
case $src in
    s3://*)
        aws=$(command -v aws || true)
        [ -n "$aws" ] || die "the AWS CLI is needed for s3:// sources; use an https:// URL instead"
        prefix=${src%/}/
        name=$("$aws" s3 ls "$prefix" | awk '{print $4}' | newest)
        [ -n "$name" ] || die "no $family package for $machine under $prefix"
        "$aws" s3 cp --only-show-errors "$prefix$name" "$tmp/$name" || exit 3
        pkg=$tmp/$name
        ;;
    *.deb|*.rpm|*.deb\?*|*.rpm\?*)
        name=${path##*/}
        case $name in
            *."$family") ;;
            *) die "$name is not a .$family package, which this instance needs; give an s3:// prefix or an https:// base URL to serve a mixed fleet" ;;
        esac
        download "$src" "$tmp/$name"
        pkg=$tmp/$name
        ;;
    *\?*)
        die "an https:// base URL takes no query string (a pre-signed URL names one package)" 2
        ;;
    *)
        base=${src%/}
        download "$base/SHA256SUMS" "$tmp/SHA256SUMS"
        name=$(awk '{sub(/^\*/, "", $2); print $2}' "$tmp/SHA256SUMS" | newest)
        [ -n "$name" ] || die "$base/SHA256SUMS lists no $family package for $machine"
        download "$base/$name" "$tmp/$name"
        want=$(awk -v n="$name" '{f=$2; sub(/^\*/, "", f)} f == n {print $1; exit}' "$tmp/SHA256SUMS")
        got=$(sha256sum "$tmp/$name" | awk '{print $1}')
        [ "$want" = "$got" ] || die "$name does not match its SHA256SUMS line (got $got)"
        pkg=$tmp/$name
        ;;
esac

echo "gd-doctor install: installing $name"
case $pkg in
    *.deb) dpkg -i "$pkg" || exit 3 ;;
    *.rpm) rpm -U --replacepkgs "$pkg" || exit 3 ;;
esac
"${GD_DOCTOR:-/usr/bin/gd-doctor}" --version
