"""Hostile captured roots, runaway commands and a gzip bomb, with the figures of the fault suite.

Each hostile root is built in a scratch directory next to a *canary*: files outside the root
whose text (a unique token) must never reach any output of a run over that root. A run goes
through the real CLI (``gd_doctor.cli.main``), so what is tested is what a user runs.

:func:`hostile_summary` builds every root, runs each with both path resolvers (openat2 and the
component walk) and returns the figures a fault summary prints; the tests in this folder assert
the same properties one case at a time. From the top directory::

    python -m tests.faults.hostile           # prints the figures as JSON
    python -m tests.faults.hostile --live    # also the traced live check (root, strace)
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import stat
import sys
import tempfile
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from gd_doctor.host import fs as fs_mod

UNIT = "amazon-guardduty-agent.service"
LOG_DIR = "var/log/amzn-guardduty-agent"
BUDGET_S = 10.0
AL2023 = (
    'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nVERSION_ID="2023"\n'
    'PRETTY_NAME="Amazon Linux 2023"\n'
)
UNIT_TEXT = (
    "[Unit]\nDescription=Amazon GuardDuty Agent\n[Service]\n"
    "ExecStart=/opt/aws/amazon-guardduty-agent/bin/amazon-guardduty-agent\n"
    "Restart=always\n"
)


@dataclass(frozen=True)
class Canary:
    """Files outside the root; ``token`` must never appear in an output."""

    token: str
    file: Path  # a text file that looks like os-release, a unit file, a log and an env file
    dir: Path  # a directory holding a log file named after the token
    journal_dir: Optional[Path]  # a real journal whose messages carry the token


def _canary_text(token: str) -> str:
    return (
        f'NAME="{token}"\nID="{token}"\nPRETTY_NAME="{token}"\n'
        f"[Service]\nEnvironment=HTTPS_PROXY=http://{token}:3128\n"
        f"HTTPS_PROXY=http://{token}:3128\n"
        f"2026-11-30T10:00:00Z ERROR dial tcp: lookup {token}.example: no such host\n"
        f"{token}\n"
    )


def make_canary(base: Path) -> Canary:
    """The canary files in ``base`` (outside every root)."""
    token = f"CANARY{uuid.uuid4().hex[:12]}"
    base.mkdir(parents=True, exist_ok=True)
    file = base / "secret.txt"
    file.write_text(_canary_text(token))
    d = base / "dir"
    d.mkdir()
    (d / f"{token}.log").write_text(_canary_text(token))
    (d / "agent.log").write_text(_canary_text(token))
    return Canary(token, file, d, _canary_journal(base / "journal", token))


def _canary_journal(d: Path, token: str) -> Optional[Path]:
    try:
        from tests.harness.journal_files import journal_from_export
    except ImportError:
        return None
    now_us = int(time.time() * 1_000_000) - 60_000_000
    entries = []
    for i in range(3):
        entries.append(
            f"__REALTIME_TIMESTAMP={now_us + i}\n__MONOTONIC_TIMESTAMP={1000 + i}\n"
            f"_BOOT_ID=97b3ad82a0f3431da58c83478a6fdc12\n_TRANSPORT=stdout\nPRIORITY=3\n"
            f"_SYSTEMD_UNIT={UNIT}\n_PID=4242\nSYSLOG_IDENTIFIER=amazon-guardduty-agent\n"
            f"MESSAGE=ERROR {token} dial tcp: lookup {token}.example: no such host\n"
        )
    try:
        journal_from_export("\n".join(entries).encode(), d / "m0")
    except Exception:  # noqa: BLE001 -- no systemd-journal-remote: the journal case degrades
        return None
    return d


# ---------------------------------------------------------------------------------------------
# The roots. Each builder gets the root directory (empty but for a plausible etc/) and the canary.


def _write(root: Path, rel: str, text: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def _link(root: Path, rel: str, target: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.is_symlink() or p.exists():
        p.unlink()
    os.symlink(target, p)


def _climb(rel: str, target: Path) -> str:
    """A relative link target from ``rel`` (inside the root) that climbs far past the root."""
    return "../" * (rel.count("/") + 12) + str(target).lstrip("/")


def _base(root: Path) -> None:
    _write(root, "etc/os-release", AL2023)
    _write(root, "etc/hostname", "captured-host\n")
    _write(root, f"lib/systemd/system/{UNIT}", UNIT_TEXT)
    (root / LOG_DIR).mkdir(parents=True, exist_ok=True)


def absolute_links(root: Path, c: Canary) -> None:
    """Absolute links to the canary: a drop-in, the hostname, os-release, the unit file."""
    _link(root, f"etc/systemd/system/{UNIT}.d/evil.conf", str(c.file))
    _link(root, "etc/hostname", str(c.file))
    _link(root, "etc/os-release", str(c.file))
    _link(root, "usr/lib/os-release", str(c.file))
    _link(root, f"etc/systemd/system/{UNIT}", str(c.file))
    _link(root, "etc/environment", str(c.file))
    _link(root, "etc/resolv.conf", str(c.file))
    _link(root, "var/lib/dpkg/status", str(c.file))


def relative_links(root: Path, c: Canary) -> None:
    """Relative links whose ``..`` climb past the root to the canary."""
    for rel in (
        f"etc/systemd/system/{UNIT}.d/evil.conf",
        "etc/hostname",
        "etc/os-release",
        "usr/lib/os-release",
        f"etc/systemd/system/{UNIT}",
        "etc/environment",
        "proc/sys/kernel/osrelease",
        "proc/cpuinfo",
        "proc/1/environ",
    ):
        _link(root, rel, _climb(rel, c.file))


def link_chains_and_loops(root: Path, c: Canary) -> None:
    """Chains of links that end outside (absolute then relative), and loops."""
    _link(root, "etc/a", "b")
    _link(root, "etc/b", "../usr/c")
    _link(root, "usr/c", _climb("usr/c", c.file))
    _link(root, "etc/os-release", "/etc/a")
    _link(root, "etc/hostname", "hostname2")
    _link(root, "etc/hostname2", "/etc/hostname")  # a loop
    _link(root, f"etc/systemd/system/{UNIT}.d/loop.conf", "loop.conf")
    _link(root, f"etc/systemd/system/{UNIT}.d/chain.conf", "/etc/a")
    _link(root, "var/lib/amazon/ssm", "../../../var/lib/amazon/ssm")  # a loop on a directory


def environment_file_dotdot(root: Path, c: Canary) -> None:
    """``EnvironmentFile=-/../../../<canary>``: no link, only ``..`` in the path itself."""
    climb = "/.." * 30 + str(c.file)
    unit = UNIT_TEXT + f"EnvironmentFile=-{climb}\nEnvironmentFile={climb}\n"
    _write(root, f"etc/systemd/system/{UNIT}", unit)
    _write(root, f"etc/systemd/system/{UNIT}.d/env.conf", f"[Service]\nEnvironmentFile={climb}\n")


def log_dir_links(root: Path, c: Canary) -> None:
    """The agent's log directory, and a file in it, lead out of the root."""
    (root / LOG_DIR).rmdir()
    _link(root, LOG_DIR, str(c.dir))
    _link(root, "var/log/amzn-guardduty-agent.1/agent.log", str(c.dir / "agent.log"))
    _link(root, "var/lib/amazon/ssm", str(c.dir))


def log_dir_relative(root: Path, c: Canary) -> None:
    """A log file linked out with ``..``, and a sub-directory linked out."""
    _link(root, f"{LOG_DIR}/agent.log", _climb(f"{LOG_DIR}/agent.log", c.dir / "agent.log"))
    _link(root, f"{LOG_DIR}/old", _climb(f"{LOG_DIR}/old", c.dir))


def journal_dir_link(root: Path, c: Canary) -> None:
    """The journal directories lead to a real journal outside the root."""
    target = c.journal_dir or c.dir
    _link(root, "var/log/journal", str(target))
    _link(root, "run/log/journal", _climb("run/log/journal", target))


def journal_file_links(root: Path, c: Canary) -> None:
    """Journal files (not the directory) linked out, absolute and relative."""
    target = (c.journal_dir / "m0" / "system.journal") if c.journal_dir else c.file
    _link(root, "var/log/journal/m1/system.journal", str(target))
    _link(root, "var/log/journal/m1/user-1000.journal", _climb("var/log/journal/m1/x", target))
    _link(root, "var/log/journal/m1/[a]*.journal", str(target))


def fifos(root: Path, c: Canary) -> None:
    """FIFOs where files are expected, in etc/ and in proc/ (a plain open would block)."""
    for rel in (
        "etc/os-release",
        "etc/hostname",
        f"lib/systemd/system/{UNIT}",
        f"etc/systemd/system/{UNIT}.d/fifo.conf",
        "proc/sys/kernel/osrelease",
        "proc/cpuinfo",
        "proc/meminfo",
        "proc/1/environ",
        "proc/config.gz",
        "sys/kernel/btf/vmlinux",
        f"{LOG_DIR}/agent.log",
        "var/lib/dpkg/status",
        "var/log/journal/m/system.journal",
        "etc/resolv.conf",
    ):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists() or p.is_symlink():
            p.unlink()
        os.mkfifo(p)
    sock = root / "etc/environment"  # a socket too: it cannot be opened, only connected
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock))


def device_nodes(root: Path, c: Canary) -> None:
    """Device nodes where files are expected (/dev/zero never ends, /dev/tty would attach)."""
    for rel, dev in (
        ("etc/os-release", os.makedev(1, 5)),  # zero
        ("etc/hostname", os.makedev(5, 0)),  # tty
        (f"{LOG_DIR}/agent.log", os.makedev(1, 5)),
        ("proc/cpuinfo", os.makedev(1, 8)),  # random
        ("var/lib/dpkg/status", os.makedev(1, 5)),
    ):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists() or p.is_symlink():
            p.unlink()
        os.mknod(p, stat.S_IFCHR | 0o600, dev)


def many_files(root: Path, c: Canary, n: int = 50_000) -> None:
    """50,000 files in the log directory (and many drop-ins)."""
    d = root / LOG_DIR
    for i in range(n):
        (d / f"agent.log.{i}").write_bytes(b"")
    dropins = root / f"etc/systemd/system/{UNIT}.d"
    dropins.mkdir(parents=True, exist_ok=True)
    for i in range(2_000):
        (dropins / f"{i:05d}.conf").write_text("[Service]\n")


def link_fan_out(root: Path, c: Canary) -> None:
    """Directories full of links back to their parents: a walk that follows links blindly
    visits 100^depth directories."""
    for rel in (LOG_DIR, "var/log/journal", "var/lib/amazon/ssm"):
        d = root / rel
        d.mkdir(parents=True, exist_ok=True)
        for i in range(100):
            _link(root, f"{rel}/d{i}", ".")
            _link(root, f"{rel}/u{i}", "..")
            _link(root, f"{rel}/r{i}", "/")
    _write(root, f"{LOG_DIR}/agent.log", "2026-11-30T10:00:00Z INFO ok\n")
    # SSM's document folders, walked a few levels deep
    inst = "var/lib/amazon/ssm/i-0123456789abcdef0/document"
    for rel in ("orchestration/AWS-GuardDuty", "association", "state/current"):
        for i in range(60):
            _link(root, f"{inst}/{rel}/d{i}", ".")
    _write(root, f"{inst}/orchestration/AWS-GuardDuty/stdout", "AmazonGuardDuty\n")


def gz_bomb(root: Path, c: Canary) -> None:
    """A rotated agent log: a few MiB of gzip holding GiBs without a newline."""
    write_gz_bomb(root / LOG_DIR / "agent.log.1.gz", 2 << 30)
    _write(root, f"{LOG_DIR}/agent.log", "2026-11-30T10:00:00Z INFO ok\n")


def write_gz_bomb(path: Path, size: int, member: int = 64 << 20) -> None:
    """A gzip file of ``size`` bytes of ``A`` and no newline: one member of ``member`` bytes
    (compressed once, about member/1000 bytes) repeated, as ``cat a.gz a.gz`` makes; a
    reader sees one line of ``size`` bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    member = min(member, size)
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"A" * (1 << 20)
    one = b"".join(comp.compress(block) for _ in range(max(1, member >> 20))) + comp.flush()
    with open(path, "wb") as fh:
        for _ in range(max(1, size // member)):
            fh.write(one)


ROOTS: Dict[str, Callable[[Path, Canary], None]] = {
    "absolute-links": absolute_links,
    "relative-links": relative_links,
    "link-chains-and-loops": link_chains_and_loops,
    "environment-file-dotdot": environment_file_dotdot,
    "log-dir-links": log_dir_links,
    "log-dir-relative": log_dir_relative,
    "journal-dir-link": journal_dir_link,
    "journal-file-links": journal_file_links,
    "fifos": fifos,
    "device-nodes": device_nodes,
    "many-files": many_files,
    "link-fan-out": link_fan_out,
    "gz-bomb": gz_bomb,
}


def mknod_works(base: Path) -> bool:
    """Whether this process may create device nodes (root, outside a restrictive container)."""
    probe = base / f".mknod-probe-{uuid.uuid4().hex[:6]}"
    try:
        os.mknod(probe, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except OSError:
        return False
    probe.unlink()
    return True


def build_root(base: Path, name: str, canary: Canary) -> Path:
    """The hostile root ``name`` under ``base``."""
    root = base / name
    root.mkdir(parents=True)
    _base(root)
    ROOTS[name](root, canary)
    return root


# ---------------------------------------------------------------------------------------------
# Running one root through the CLI.


@dataclass
class RootRun:
    """What one CLI run over a hostile root did."""

    name: str
    resolver: str
    exit_code: int
    elapsed_s: float
    outputs: Dict[str, str] = field(default_factory=dict)  # "stdout", "stderr", "report"
    leaked_in: List[str] = field(default_factory=list)  # outputs holding the canary
    over_budget: bool = False
    processes_left: int = 0
    root_changed: List[str] = field(default_factory=list)


def _tree(root: Path) -> Dict[str, Tuple[int, int, float]]:
    """(mode, size, mtime) of every entry under ``root``, without following links."""
    out: Dict[str, Tuple[int, int, float]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_size, st.st_mtime)
    return out


def children() -> List[int]:
    """PIDs of this process's descendants (commands a run left behind)."""
    import psutil

    found = []
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
    return found


@contextlib.contextmanager
def resolver(name: str) -> Iterator[None]:
    """Force the path resolver of every RootFS: ``"openat2"`` or ``"walk"``."""
    saved = fs_mod.RootFS.resolver
    fs_mod.RootFS.resolver = name  # type: ignore[misc]
    try:
        yield
    finally:
        fs_mod.RootFS.resolver = saved  # type: ignore[misc]


def run_cli(
    name: str,
    root: Path,
    canary: Canary,
    out_dir: Path,
    *,
    resolver_name: str = "auto",
    fmt: str = "json",
    budget_s: float = BUDGET_S,
) -> RootRun:
    """``gd-doctor check --root ROOT --format FMT --output OUT`` in this process."""
    from gd_doctor.cli import main

    report = out_dir / f"{name}-{resolver_name}-{fmt}.json"
    argv = ["check", "--root", str(root), "--format", fmt, "--timeout", str(budget_s)]
    argv += ["--output", str(report)] + (["--verbose"] if fmt == "text" else [])
    before = _tree(root)
    stdout, stderr = io.StringIO(), io.StringIO()
    start = time.monotonic()
    code = 0
    with (
        resolver(resolver_name),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    elapsed = time.monotonic() - start
    run = RootRun(name, resolver_name, code, elapsed)
    run.outputs = {"stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
    if report.exists():
        run.outputs["report"] = report.read_text(errors="replace")
    run.leaked_in = [k for k, v in run.outputs.items() if canary.token in v]
    run.over_budget = elapsed > budget_s * 1.05 + 0.5
    time.sleep(0.05)
    run.processes_left = len(children())
    after = _tree(root)
    run.root_changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    return run


# ---------------------------------------------------------------------------------------------
# Runaway commands and the gzip bomb, for the summary.


RUNAWAY = (
    ("sleeper", ["sh", "-c", "sleep 100 & sleep 100"]),
    ("forker", ["sh", "-c", "for i in 1 2 3 4 5; do (sleep 100 &) ; done; sleep 100"]),
    ("flood", ["sh", "-c", "yes CANARYFLOOD"]),
    ("flood-stderr", ["sh", "-c", "yes >&2"]),
    ("orphan-holding-pipe", ["sh", "-c", "sleep 100 & echo started"]),
    ("closes-pipes", ["sh", "-c", "exec >&- 2>&-; sleep 100"]),
)


@dataclass
class CommandRun:
    name: str
    elapsed_s: float
    problem: Optional[str]
    truncated: bool
    stdout_bytes: int
    processes_left: int


def run_runaway(timeout: float = 1.0) -> List[CommandRun]:
    """Every RUNAWAY command through SubprocessRunner; then close() it."""
    from gd_doctor.host.commands import SubprocessRunner

    runner = SubprocessRunner()
    out = []
    for name, argv in RUNAWAY:
        start = time.monotonic()
        res = runner.run(argv, timeout=timeout)
        elapsed = time.monotonic() - start
        time.sleep(0.05)
        out.append(
            CommandRun(name, elapsed, res.problem, res.truncated, len(res.stdout), len(children()))
        )
    runner.close()
    return out


def gz_bomb_read(base: Path, size: int = 1 << 30, timeout: float = 4.0) -> Tuple[float, int]:
    """Seconds and decompressed bytes read_log_file spends on a bomb of ``size`` bytes."""
    from gd_doctor.host.fs import RootFS
    from gd_doctor.host.logfiles import read_log_file

    write_gz_bomb(base / "bomb.log.gz", size)
    start = time.monotonic()
    res = read_log_file(
        RootFS(base),
        "/bomb.log.gz",
        lambda line: False,
        max_bytes=64 << 20,
        max_line=8192,
        max_lines=100,
        timeout=timeout,
    )
    return time.monotonic() - start, res.bytes_read


def live_write_attempts() -> Optional[int]:
    """Opens for writing of a traced live ``gd-doctor check`` (tests/faults/test_readonly.py),
    or None when it cannot run here (not root, no strace or unshare)."""
    import shutil

    if os.geteuid() != 0 or not shutil.which("strace") or not shutil.which("unshare"):
        return None
    from tests.faults.test_readonly import _traced, writes

    with tempfile.TemporaryDirectory(prefix="gd-doctor-ro-") as tmp:
        out = f"{tmp}/out"
        command = [
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
        ]
        _, trace, _, _ = _traced(Path(tmp), command)
        return len(writes(trace, (out + "/",)))


def hostile_summary(
    roots: Optional[List[str]] = None,
    resolvers: Tuple[str, ...] = ("openat2", "walk"),
    live: bool = False,
) -> Dict[str, object]:
    """Build every hostile root, run each through the CLI with each resolver, run the runaway
    commands and the gzip bomb (and with ``live`` the traced live check); return the figures
    (every count but ``roots_tried``, ``runs`` and the runaway/gzip sizes must be 0)."""
    names = list(roots or ROOTS)
    runs: List[RootRun] = []
    skipped: List[str] = []
    with tempfile.TemporaryDirectory(prefix="gd-doctor-faults-") as tmp:
        base = Path(tmp)
        canary = make_canary(base / "outside")
        if "device-nodes" in names and not mknod_works(base):
            names.remove("device-nodes")
            skipped.append("device-nodes (mknod not permitted)")
        usable = [r for r in resolvers if r != "openat2" or fs_mod.openat2_available()]
        skipped += [f"resolver {r} (kernel without openat2)" for r in resolvers if r not in usable]
        out_dir = base / "out"
        out_dir.mkdir()
        for name in names:
            root = build_root(base / "roots", name, canary)
            for res in usable:
                runs.append(run_cli(name, root, canary, out_dir, resolver_name=res))
        commands = run_runaway()
        bomb_s, bomb_bytes = gz_bomb_read(base)
    live_writes = live_write_attempts() if live else None
    return {
        "roots_tried": len(names),
        "runs": len(runs),
        "resolvers": list(usable),
        "escapes": sum(1 for r in runs if r.leaked_in),
        "escaped": [
            f"{r.name}/{r.resolver}: {', '.join(r.leaked_in)}" for r in runs if r.leaked_in
        ],
        "runs_over_budget": sum(1 for r in runs if r.over_budget),
        "slowest_run_s": round(max((r.elapsed_s for r in runs), default=0.0), 2),
        "budget_s": BUDGET_S,
        "processes_left": sum(r.processes_left for r in runs)
        + sum(c.processes_left for c in commands)
        + len(children()),
        "host_writes": sum(len(r.root_changed) for r in runs) + (live_writes or 0),
        "live_write_attempts": live_writes,  # None: not measured (needs root, strace, unshare)
        "runaway_commands_tried": len(commands),
        "runaway_commands_over_timeout": sum(1 for c in commands if c.elapsed_s > 1.0 * 1.05 + 0.5),
        "gz_bomb_seconds": round(bomb_s, 2),
        "gz_bomb_bytes_decompressed": bomb_bytes,
        "skipped": skipped,
    }


if __name__ == "__main__":
    import json

    json.dump(hostile_summary(live="--live" in sys.argv), sys.stdout, indent=2)
    sys.stdout.write("\n")
