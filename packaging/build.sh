#!/bin/sh
# Build the gd-doctor packages: gd-doctor_<version>_{amd64,arm64}.deb and
# gd-doctor-<version>.{x86_64,aarch64}.rpm, into dist/ (or $GD_DOCTOR_DIST).
#
#   packaging/build.sh [--arch x86_64|aarch64] [--offline]
#
# For each architecture one tree is staged (launcher, gd_doctor/, vendored dependencies from
# packaging/vendor.lock, man page, completion, changelog) and both packages are made from it.
# The version comes only from gd_doctor/__init__.py. Wheels are cached under dist/.build/wheels
# and checked against the lock file's hashes; --offline uses only that cache (no network).
# Runs on Debian/Ubuntu (dpkg-deb, rpm's rpmbuild) as any user; no root needed.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$HERE")
OUT=${GD_DOCTOR_DIST:-$TOP/dist}
WORK="$OUT/.build"
MAINTAINER=${GD_DOCTOR_MAINTAINER:-"gd-doctor developers <gd-doctor@users.noreply.github.com>"}
HOMEPAGE=${GD_DOCTOR_HOMEPAGE:-"https://github.com/gd-doctor/gd-doctor"}
PYTHON=${PYTHON:-python3}

die() { echo "build.sh: $*" >&2; exit 1; }
say() { echo "build.sh: $*"; }

arches=""
offline=0
while [ $# -gt 0 ]; do
    case $1 in
        --arch) [ $# -ge 2 ] || die "--arch needs a value"; arches="$arches $2"; shift 2 ;;
        --arch=*) arches="$arches ${1#--arch=}"; shift ;;
        --offline) offline=1; shift ;;
        -h|--help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[ -n "$arches" ] || arches="x86_64 aarch64"
for a in $arches; do
    case $a in x86_64|aarch64) ;; *) die "unsupported architecture: $a (x86_64 or aarch64)" ;; esac
done

# --- tools -----------------------------------------------------------------------------------
missing=""
need() {  # need TOOL HINT
    command -v "$1" >/dev/null 2>&1 || missing="$missing
  $1 ($2)"
}
need "$PYTHON" "python3 >= 3.9"
need dpkg-deb "Debian: apt-get install dpkg"
need rpmbuild "Debian: apt-get install rpm; Fedora/RHEL: dnf install rpm-build"
need gzip "apt-get install gzip"
need tar "apt-get install tar"
need md5sum "apt-get install coreutils"
need sha256sum "apt-get install coreutils"
for a in $arches; do
    case $a in
        x86_64) need strip "apt-get install binutils" ;;
        aarch64) need aarch64-linux-gnu-strip "apt-get install binutils-aarch64-linux-gnu" ;;
    esac
done
if command -v "$PYTHON" >/dev/null 2>&1 && ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    missing="$missing
  pip for $PYTHON (apt-get install python3-pip)"
fi
[ -z "$missing" ] || die "missing tool(s):$missing"

# --- version ---------------------------------------------------------------------------------
pkgtool() { "$PYTHON" "$HERE/pkgtool.py" "$@"; }
VERSION=$(pkgtool version "$TOP") || die "cannot read the version from gd_doctor/__init__.py"
clver=$(pkgtool changelog-version "$HERE/changelog") || die "cannot parse packaging/changelog"
[ "$clver" = "$VERSION" ] ||
    die "packaging/changelog's newest entry is $clver but gd_doctor/__init__.py says $VERSION; add a changelog entry for $VERSION"
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(pkgtool changelog-epoch "$HERE/changelog")}
export SOURCE_DATE_EPOCH
DATE=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
say "gd-doctor $VERSION for:$arches"

umask 022
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$OUT" "$WORK"

# --- helpers ---------------------------------------------------------------------------------
fetch_wheels() {  # fetch_wheels ARCH DIR
    set -- "$1" "$2" --no-deps --require-hashes --only-binary=:all: --python-version 3.9 \
        --implementation cp --platform "manylinux2014_$1" --platform any \
        -r "$HERE/vendor.lock"
    arch=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    if "$PYTHON" -m pip download -q --no-index --find-links "$dir" -d "$dir" "$@" \
            >"$WORK/pip-$arch.log" 2>&1; then
        return 0
    fi
    [ "$offline" = 0 ] || die "--offline: wheels for $arch missing from $dir"
    say "downloading wheels for $arch"
    "$PYTHON" -m pip download -q -d "$dir" "$@" >"$WORK/pip-$arch.log" 2>&1 || {
        grep -v '^WARNING' "$WORK/pip-$arch.log" | tail -20 >&2
        die "pip download of packaging/vendor.lock for $arch failed (log: $WORK/pip-$arch.log)"
    }
}

stage_tree() {  # stage_tree ARCH ROOT
    arch=$1 root=$2
    wheels="$WORK/wheels/$arch"
    lib="$root/usr/lib/gd-doctor"
    rm -rf "$root"
    mkdir -p "$root/usr/bin" "$lib/vendor" "$root/usr/share/man/man1" \
        "$root/usr/share/bash-completion/completions" "$root/usr/share/doc/gd-doctor"

    install -m 0755 "$HERE/gd-doctor.sh" "$root/usr/bin/gd-doctor"
    install -m 0644 "$HERE/gd-doctor.py" "$lib/gd-doctor.py"
    # The whole package, whatever modules and data it has today.
    tar -C "$TOP" --exclude=__pycache__ --exclude='*.py[co]' --exclude='*.egg-info' --exclude='.*' \
        -cf - gd_doctor | tar -C "$lib" -xf -

    fetch_wheels "$arch" "$wheels"
    for w in "$wheels"/*.whl; do
        case ${w##*/} in
            *-none-any.whl) ;;
            psutil-*-abi3-manylinux*_"$arch".whl) ;;
            *) die "unexpected wheel ${w##*/}: only pure-Python wheels and psutil's abi3 wheel may be vendored" ;;
        esac
    done
    "$PYTHON" -m pip install -q --no-deps --no-compile --no-index --find-links "$wheels" \
        --require-hashes --only-binary=:all: --python-version 3.9 --implementation cp \
        --platform "manylinux2014_$arch" --platform any --no-warn-script-location \
        --target "$lib/vendor" -r "$HERE/vendor.lock" >>"$WORK/pip-$arch.log" 2>&1 || {
        grep -v '^WARNING' "$WORK/pip-$arch.log" | tail -20 >&2
        die "pip install of the vendored wheels for $arch failed (log: $WORK/pip-$arch.log)"
    }

    # Prune what an installed tree does not need, and what lintian/rpmlint rightly object to.
    rm -rf "$lib/vendor/bin"
    find "$lib/vendor" -path '*.dist-info/*' \
        \( -name RECORD -o -name INSTALLER -o -name REQUESTED -o -name direct_url.json \) \
        -exec rm -f {} +
    find "$lib/vendor" -type d -name tests -path '*/certifi/*' -exec rm -rf {} +
    find "$root" -type d -name __pycache__ -exec rm -rf {} +
    # Modules are imported, never executed: no shebangs, no exec bits (except the launcher).
    find "$lib" -name '*.py' -type f -exec sed -i '1{/^#!/d}' {} +
    find "$root" -type d -exec chmod 0755 {} +
    find "$root" -type f -exec chmod 0644 {} +
    chmod 0755 "$root/usr/bin/gd-doctor"
    so_strip="strip"
    [ "$arch" = aarch64 ] && so_strip=aarch64-linux-gnu-strip
    find "$lib/vendor" -name '*.so' -type f -exec "$so_strip" --strip-unneeded {} +

    pkgtool render "$HERE/gd-doctor.1" "VERSION=$VERSION" "DATE=$DATE" |
        gzip -9n >"$root/usr/share/man/man1/gd-doctor.1.gz"
    install -m 0644 "$HERE/gd-doctor.bash-completion" \
        "$root/usr/share/bash-completion/completions/gd-doctor"
    gzip -9n <"$HERE/changelog" >"$root/usr/share/doc/gd-doctor/changelog.gz"
    # The Run Command document and the fleet definitions (State Manager association, StackSet
    # template) travel with the package, so an installed instance has the version they fit.
    mkdir -p "$root/usr/share/doc/gd-doctor/examples"
    for f in "$HERE/ssm/gd-doctor-run.json" "$HERE"/fleet/*.json "$HERE"/fleet/*.yaml; do
        if [ -f "$f" ]; then
            install -m 0644 "$f" "$root/usr/share/doc/gd-doctor/examples/${f##*/}"
        fi
    done
}

# Maintainer scripts: the shared fragment plus one action each.
write_scripts() {  # write_scripts DIR
    d=$1
    mkdir -p "$d"
    frag=$(cat "$HERE/scripts/pycheck.sh")
    hdr='#!/bin/sh
set -e'
    printf '%s\n%s\n\ngd_require_python || exit 1\n' "$hdr" "$frag" >"$d/preinst"
    # shellcheck disable=SC2016  # $1 belongs to the generated script
    printf '%s\n%s\n\ncase "$1" in\n    configure) gd_compile ;;\nesac\n' "$hdr" "$frag" \
        >"$d/postinst"
    printf '%s\n%s\n\ngd_clean\n' "$hdr" "$frag" >"$d/prerm"
    # rpm: %pre refuses an old Python; %post compiles; %preun cleans only on erase ($1 = 0),
    # because on upgrade the old package's %preun runs after the new package's %post.
    printf '%s\n\ngd_require_python || exit 1\n' "$frag" >"$d/rpm-pre"
    printf '%s\n\ngd_compile\n' "$frag" >"$d/rpm-post"
    # shellcheck disable=SC2016  # $1 belongs to the generated script
    printf '%s\n\nif [ "$1" = 0 ]; then\n    gd_clean\nfi\n' "$frag" >"$d/rpm-preun"
}

clamp_mtimes() { find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +; }

build_deb() {  # build_deb ARCH STAGE
    arch=$1 stage=$2
    case $arch in x86_64) debarch=amd64 ;; aarch64) debarch=arm64 ;; esac
    root="$WORK/deb-$arch"
    rm -rf "$root"
    cp -a "$stage" "$root"
    install -m 0644 "$HERE/debian/copyright" "$root/usr/share/doc/gd-doctor/copyright"
    mkdir -p "$root/usr/share/lintian/overrides" "$root/DEBIAN"
    install -m 0644 "$HERE/debian/lintian-overrides" "$root/usr/share/lintian/overrides/gd-doctor"
    write_scripts "$WORK/scripts-$arch"
    for s in preinst postinst prerm; do
        install -m 0755 "$WORK/scripts-$arch/$s" "$root/DEBIAN/$s"
    done
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    pkgtool render "$HERE/debian/control.in" "VERSION=$VERSION" "DEB_ARCH=$debarch" \
        "MAINTAINER=$MAINTAINER" "INSTALLED_SIZE=$size" "HOMEPAGE=$HOMEPAGE" \
        >"$root/DEBIAN/control"
    (cd "$root" && find usr -type f | LC_ALL=C sort | xargs md5sum) >"$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
    clamp_mtimes "$root"
    deb="$OUT/gd-doctor_${VERSION}_${debarch}.deb"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null ||
        die "dpkg-deb failed for $arch"
    say "built ${deb#"$TOP"/}"
}

build_rpm() {  # build_rpm ARCH STAGE
    arch=$1 stage=$2
    root="$WORK/rpm-$arch/root"
    top="$WORK/rpm-$arch/top"
    rm -rf "$WORK/rpm-$arch"
    mkdir -p "$top" "$WORK/rpm-$arch"
    cp -a "$stage" "$root"
    mkdir -p "$root/usr/share/licenses/gd-doctor"
    install -m 0644 "$TOP/LICENSE" "$root/usr/share/licenses/gd-doctor/LICENSE"
    clamp_mtimes "$root"
    write_scripts "$WORK/scripts-$arch"
    pkgtool rpm-changelog "$HERE/changelog" >"$WORK/rpm-$arch/changelog"
    rpmbuild -bb --quiet --target "$arch" \
        --define "_topdir $top" \
        --define "_rpmdir $OUT" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}.%%{ARCH}.rpm" \
        --define "_buildhost gd-doctor-build" \
        --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" \
        --define "gd_version $VERSION" \
        --define "gd_arch $arch" \
        --define "gd_homepage $HOMEPAGE" \
        --define "gd_maintainer $MAINTAINER" \
        --define "gd_stagedir $root" \
        --define "gd_scriptdir $WORK/scripts-$arch" \
        --define "gd_changelog $WORK/rpm-$arch/changelog" \
        "$HERE/rpm/gd-doctor.spec" >"$WORK/rpm-$arch/rpmbuild.log" 2>&1 || {
        tail -30 "$WORK/rpm-$arch/rpmbuild.log" >&2
        die "rpmbuild failed for $arch (log: $WORK/rpm-$arch/rpmbuild.log)"
    }
    say "built ${OUT#"$TOP"/}/gd-doctor-$VERSION.$arch.rpm"
}

for arch in $arches; do
    stage="$WORK/stage-$arch"
    stage_tree "$arch" "$stage"
    build_deb "$arch" "$stage"
    build_rpm "$arch" "$stage"
done

# SHA256SUMS names every package of this version in dist/: the Run Command document's
# installFrom=https://<base URL>/ reads it to pick the package for each instance and check it.
(cd "$OUT" && for f in "gd-doctor_${VERSION}_"*.deb "gd-doctor-${VERSION}."*.rpm; do
    if [ -f "$f" ]; then sha256sum "$f"; fi
done) >"$OUT/SHA256SUMS.tmp" && mv "$OUT/SHA256SUMS.tmp" "$OUT/SHA256SUMS"
say "wrote ${OUT#"$TOP"/}/SHA256SUMS"
