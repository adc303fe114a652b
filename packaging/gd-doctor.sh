#!/bin/sh
# /usr/bin/gd-doctor: run gd-doctor with the first Python >= 3.9 on this host.
#
# The code and its pinned dependencies live in /usr/lib/gd-doctor; nothing is taken from
# PYTHONPATH, PYTHONHOME, the user's site-packages, HOME or the current directory (python -I),
# and no bytecode is written at run time (-B): the package compiles it when installed.
# /usr/bin/python3 comes first because it is the interpreter that can import the distro's
# python3-systemd. GD_DOCTOR_PYTHON names another interpreter to use instead.
# Exit code 3 (the tool itself failed) when no suitable Python is found.

GD_DOCTOR_LIBDIR=${GD_DOCTOR_LIBDIR:-/usr/lib/gd-doctor}
export TYPER_USE_RICH=0

if [ -n "${GD_DOCTOR_PYTHON:-}" ]; then
    candidates=$GD_DOCTOR_PYTHON
else
    candidates="/usr/bin/python3 /usr/bin/python3.14 /usr/bin/python3.13 /usr/bin/python3.12
        /usr/bin/python3.11 /usr/bin/python3.10 /usr/bin/python3.9"
fi

seen=""
for py in $candidates; do
    [ -x "$py" ] || continue
    if "$py" -I -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
        exec "$py" -I -B "$GD_DOCTOR_LIBDIR/gd-doctor.py" "$@"
    fi
    ver=$("$py" -I -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) \
        || ver="unknown version"
    seen="$seen $py ($ver)"
done

if [ -n "${GD_DOCTOR_PYTHON:-}" ]; then
    echo "gd-doctor: GD_DOCTOR_PYTHON=$GD_DOCTOR_PYTHON is not an executable Python >= 3.9" >&2
fi
if [ -n "$seen" ]; then
    echo "gd-doctor: needs Python >= 3.9; found only:$seen" >&2
else
    echo "gd-doctor: needs Python >= 3.9; no python3 found in /usr/bin" >&2
fi
echo "gd-doctor: install python3.9 or newer (e.g. dnf install python3.11, apt-get install python3)" >&2
exit 3
