# Shared maintainer-script fragment (deb preinst/postinst/prerm, rpm %pre/%post/%preun).
# Defines gd_find_python (the same search as /usr/bin/gd-doctor), gd_require_python,
# gd_compile and gd_clean. build.sh pastes it into each generated script.
gd_libdir=/usr/lib/gd-doctor

gd_find_python() {
    for py in /usr/bin/python3 /usr/bin/python3.14 /usr/bin/python3.13 /usr/bin/python3.12 \
        /usr/bin/python3.11 /usr/bin/python3.10 /usr/bin/python3.9; do
        [ -x "$py" ] || continue
        if "$py" -I -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    return 1
}

# Refuse to install on a host whose only Python is older than 3.9. Silent when there is no
# python3 at all yet: the package manager installs the declared python3 dependency first.
gd_require_python() {
    gd_find_python >/dev/null && return 0
    if [ -x /usr/bin/python3 ]; then
        ver=$(/usr/bin/python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' \
            2>/dev/null) || ver="unknown"
        echo "gd-doctor: needs Python >= 3.9, but /usr/bin/python3 is $ver." >&2
        echo "gd-doctor: install python3.9 or newer first; gd-doctor was not installed." >&2
        return 1
    fi
    return 0
}

# Pre-compile bytecode with the interpreter the launcher will use (the launcher runs with -B).
gd_compile() {
    py=$(gd_find_python) || return 0
    "$py" -I -m compileall -q "$gd_libdir" >/dev/null 2>&1 || true
}

gd_clean() {
    [ -d "$gd_libdir" ] || return 0
    find "$gd_libdir" -depth -type d -name __pycache__ -exec rm -rf {} + 2>/dev/null || true
}
