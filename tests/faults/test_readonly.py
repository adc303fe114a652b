"""Read-only means read-only: the whole live check, traced, opens nothing for writing.

``gd-doctor check`` runs on this machine as root, inside a private mount and network namespace
in which every mount is read-only (bind remounts of the namespace's own copies: the machine's
mounts are untouched) and only loopback exists; IMDS points at a closed loopback port. strace
records every open and every call that creates, renames or removes a file. Any such call for
writing outside ``--output`` (and /dev/null, /dev/tty, /proc/self) fails the test, whether it
succeeded or met the read-only mount: on a real host it would have written.

One exception, and it is checked: rpm's SQLite always tries to open its ``-wal``/``-shm``
read-write first. gd-doctor runs rpm in a read-only mount namespace of its own
(gd_doctor/host/readonly.py), which checks that the rpm database directories are read-only
before it execs rpm; so such an attempt fails on every host. An attempt is excused only when
its process (or an ancestor) entered that namespace (``unshare(CLONE_NEWNS)`` in the trace)
and it aims at an rpm database directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest

from gd_doctor.host.readonly import RPM_DB_DIRS

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount and network namespaces)"),
    pytest.mark.skipif(
        shutil.which("strace") is None, reason="needs strace (apt-get install strace)"
    ),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)"),
]

TOP = Path(__file__).resolve().parents[2]
TRACED = (
    "open,openat,openat2,creat,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,"
    "link,linkat,symlink,symlinkat,truncate,rmdir,execve,unshare,clone,clone3,fork,vfork"
)
WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND")
ALWAYS_WRITES = (
    "creat",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "mkdir",
    "mkdirat",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "truncate",
    "rmdir",
)
ALLOWED = ("/dev/null", "/dev/tty", "/proc/self/", "/proc/thread-self/")
LINE = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(\w+)\((.*)$")

# Runs inside the namespaces: $1 is the output directory, the rest is the command.
SCRIPT = r"""
set -eu
OUT="$1"; shift
ip link set lo up
awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r m; do
  m=$(printf '%b' "$m")
  # bind remount: the per-mount flag of this namespace's copy, never the filesystem itself
  mount -o remount,bind,ro "$m" 2>/dev/null || true
done
if [ -w / ] && touch /.gd-doctor-ro-probe 2>/dev/null; then
  rm -f /.gd-doctor-ro-probe; echo "/ is still writable" >&2; exit 97
fi
mount -t tmpfs -o size=64m gd-doctor-out "$OUT"
cd "$OUT"
rc=0
strace -f -qq -s 512 -o "$OUT/trace" -e trace=__TRACED__ "$@" >"$OUT/stdout" 2>"$OUT/stderr" || rc=$?
echo "=== rc $rc"
echo "=== trace"; cat "$OUT/trace"
echo "=== stderr"; cat "$OUT/stderr"
echo "=== report"; cat "$OUT/report.json" 2>/dev/null || true
"""


def _traced(tmp_path: Path, command: List[str]) -> Tuple[str, str, str, str]:
    """(rc, trace, stderr, report) of ``command`` run read-only and traced."""
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(TOP))
    proc = subprocess.run(
        [
            "unshare",
            "--mount",
            "--net",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            SCRIPT.replace("__TRACED__", TRACED),
            "sh",
            str(out),
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=str(TOP),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    parts = dict(
        [*chunk.split("\n", 1), ""][:2] for chunk in proc.stdout.split("=== ")[1:]
    )  # "rc 0\n..." keys are the first line
    rc = next(k for k in parts if k.startswith("rc ")).split()[1]
    return rc, parts.get("trace", ""), parts.get("stderr", ""), parts.get("report", "")


def _joined(trace: str) -> List[str]:
    """strace lines with each ``<unfinished ...>`` / ``<... x resumed>`` pair joined into one
    (threads interleave calls; the halves of one call carry its path and its result)."""
    lines: List[str] = []
    open_calls: Dict[str, int] = {}
    for line in trace.splitlines():
        m = re.match(r"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$", line)
        if m and m.group(1) in open_calls:
            i = open_calls.pop(m.group(1))
            lines[i] = lines[i].replace(" <unfinished ...>", "") + m.group(2)
            continue
        if line.endswith("<unfinished ...>"):
            open_calls[line.split()[0]] = len(lines)
        lines.append(line)
    return lines


def _sandboxed_pids(trace: str) -> Set[str]:
    """PIDs inside a mount namespace gd-doctor's read-only launcher made (and their children)."""
    parent: Dict[str, str] = {}
    unshared: Set[str] = set()
    for line in _joined(trace):
        m = LINE.match(line)
        if not m:
            continue
        pid, call, rest = m.groups()
        child = re.search(r"= (\d+)$", rest)
        if call in ("clone", "clone3", "fork", "vfork") and child:
            parent[child.group(1)] = pid
        if call == "unshare" and "CLONE_NEWNS" in rest and re.search(r"= 0$", rest):
            unshared.add(pid)
    inside = set()
    for pid in set(parent) | unshared:
        p: Optional[str] = pid
        while p is not None:
            if p in unshared:
                inside.add(pid)
                break
            p = parent.get(p)
    return inside


def writes(trace: str, allowed_dirs: Tuple[str, ...]) -> List[str]:
    """The traced calls that open for writing, create, rename or remove outside the allowed."""
    found = []
    sandboxed = _sandboxed_pids(trace)
    for line in _joined(trace):
        m = LINE.match(line)
        if not m:
            continue
        pid, call, rest = m.groups()
        paths = re.findall(r'"((?:[^"\\]|\\.)*)"', rest)
        if call == "execve" or not paths:
            continue
        path = next((p for p in paths if p.startswith("/")), paths[0])
        if call in ("open", "openat", "openat2"):
            if not WRITE_FLAGS.search(rest):
                continue
        elif call not in ALWAYS_WRITES:
            continue
        if path.startswith(ALLOWED) or path.startswith(allowed_dirs) or path in ALLOWED:
            continue
        if re.match(r"/proc/\d+/", path):
            continue
        if pid in sandboxed and path.startswith(tuple(d + "/" for d in RPM_DB_DIRS)):
            continue  # inside the launcher's read-only namespace, which checked these dirs
        found.append(line)
    return found


def _execs(trace: str, name: str) -> int:
    return sum(1 for line in trace.splitlines() if 'execve("' in line and f'/{name}"' in line)


def test_the_live_check_writes_nothing(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    rc, trace, stderr, report = _traced(
        tmp_path,
        [
            sys.executable,
            "-m",
            "gd_doctor",
            "check",
            "--format",
            "json",
            "--output",
            f"{out}/report.json",
            "--imds-endpoint",
            "http://127.0.0.1:9",
            "--timeout",
            "30",
        ],
    )
    assert rc in ("0", "1"), stderr
    assert '"verdict"' in report, stderr
    # Every open of the whole run is in the trace, the package layer's read-only SQLite reads
    # of an rpm database included (it no longer runs `rpm -q` for that), and `rpm -V` when a
    # package is installed: none of them may write.
    assert writes(trace, (out + "/",)) == []


@pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm is not installed")
def test_the_tracer_sees_rpms_writes_without_the_sandbox(tmp_path: Path) -> None:
    """The detector can fail: plain ``rpm -q`` (rpm 4.16+, SQLite) opens its -wal/-shm
    read-write. If this rpm does not, the sandbox is not needed here and the test says so."""
    code = (
        "from gd_doctor.host.commands import SubprocessRunner as R;"
        "print(R(readonly_sandbox=False).run(['rpm','-q','rpm'],timeout=20))"
    )
    out = str(tmp_path / "out")
    rc, trace, stderr, _ = _traced(tmp_path, [sys.executable, "-c", code])
    assert rc == "0", stderr
    found = writes(trace, (out + "/",))
    if not found:
        pytest.skip("this rpm opens nothing for writing (no SQLite database?)")
    assert any("rpmdb" in line or "/rpm" in line for line in found), found
