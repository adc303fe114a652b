"""Run a query command that would write (``rpm``) where it cannot: a read-only mount namespace.

``rpm -q`` and ``rpm -V`` only read, but rpm 4.16+ keeps its database in SQLite's WAL mode, and
SQLite opens ``rpmdb.sqlite-wal`` and ``-shm`` read-write (creating them when missing) even for a
read-only query; rpm has no option that stops it. As root, gd-doctor therefore runs rpm through
:data:`LAUNCHER`: a few lines of Python that enter a private mount namespace, make every mount
of that namespace read-only (a bind remount: the per-mount flag of the namespace's own copy,
never the filesystem's), check that the rpm database directories really are read-only there,
and only then exec the command. SQLite falls back to read-only access by itself and the query
works; nothing can be written, and the host's mounts are untouched (the namespace goes away
with the command).

The launcher runs as ``python -I -S -c LAUNCHER -- argv...`` so it imports nothing of gd-doctor
and nothing from site-packages. It exits with :data:`FAILED` and a line on stderr starting with
:data:`MARK` when the namespace cannot be made; the runner turns that into a clear problem and
the command is not run.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import List, Mapping, Optional, Sequence

FAILED = 125
MARK = "gd-doctor-readonly:"
SANDBOXED = frozenset({"rpm"})  # queries that write when run plainly (see the module doc)
# Where rpm keeps its database: the distribution default, the newer one, Debian's per-user one.
RPM_DB_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm", "/root/.rpmdb")

LAUNCHER = r"""
import codecs, ctypes, os, sys
MARK = "gd-doctor-readonly:"
def fail(msg):
    sys.stderr.write(MARK + " " + msg + "\n")
    sys.stderr.flush()
    os._exit(125)
CLONE_NEWNS, MS_RDONLY, MS_REMOUNT, MS_BIND = 0x20000, 1, 32, 4096
MS_REC, MS_PRIVATE = 16384, 1 << 18
KEEP = ((os.ST_NOSUID, 2), (os.ST_NODEV, 4), (os.ST_NOEXEC, 8), (os.ST_NOATIME, 1024),
        (os.ST_NODIRATIME, 2048), (os.ST_RELATIME, 1 << 21))
libc = ctypes.CDLL(None, use_errno=True)
def err():
    return os.strerror(ctypes.get_errno())
argv, checked = sys.argv[2:], [p for p in sys.argv[1].split(":") if p]
before = os.readlink("/proc/self/ns/mnt")
if libc.unshare(CLONE_NEWNS) != 0:
    fail("cannot enter a private mount namespace: " + err())
if os.readlink("/proc/self/ns/mnt") == before:
    fail("no new mount namespace")
if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
    fail("cannot make the mount namespace private: " + err())
with open("/proc/self/mountinfo", "rb") as fh:
    points = [codecs.escape_decode(line.split()[4])[0] for line in fh if len(line.split()) > 4]
for mp in points:
    try:
        have = os.statvfs(mp).f_flag
    except OSError:
        continue  # hidden under another mount: not reachable, so not writable either
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for st, ms in KEEP:
        if have & st:
            flags |= ms
    libc.mount(None, mp, None, flags, None)
for path in ["/"] + checked:
    try:
        if not os.statvfs(path).f_flag & os.ST_RDONLY:
            fail(path + " is still writable")
    except FileNotFoundError:
        pass
try:
    os.execvp(argv[0], argv)
except OSError as exc:
    fail("cannot run " + argv[0] + ": " + (exc.strerror or str(exc)))
"""


def needs_sandbox(argv: Sequence[str], euid: int) -> bool:
    """True for a command that writes when run plainly, run as root (who may write)."""
    return bool(argv) and euid == 0 and os.path.basename(argv[0]) in SANDBOXED


def sandboxed(argv: Sequence[str], env: Mapping[str, str]) -> Optional[List[str]]:
    """The argv that runs ``argv`` in a read-only mount namespace; None if the command is not
    on PATH (the caller reports "not found", as for any command)."""
    if shutil.which(argv[0], path=env.get("PATH")) is None:
        return None
    python = sys.executable or shutil.which("python3", path=env.get("PATH")) or "python3"
    dirs = (*RPM_DB_DIRS, os.path.expanduser("~/.rpmdb"))
    checked = ":".join(d for d in dirs if ":" not in d)
    return [python, "-I", "-S", "-c", LAUNCHER, checked, *argv]


def launcher_problem(returncode: Optional[int], stderr: str) -> Optional[str]:
    """The launcher's own failure (no namespace), as a problem for the result; else None."""
    if returncode != FAILED:
        return None
    for line in stderr.splitlines():
        if line.startswith(MARK):
            return f"not run read-only: {line[len(MARK) :].strip()}"
    return None
