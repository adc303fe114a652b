"""Benchmark of the agent log and journal analysis: big inputs with the 24 h window at the end.

    python -m benchmarks.agent_bench [--log-mib 1024] [--journal-entries 1000000]

Generates, in a temporary directory (never in git): a log directory of the given size whose
last lines fall in the 24 h window, and (with systemd-journal-remote) a real .journal file of
N entries of the agent unit with the window at the end. Each analysis runs in a fresh
subprocess; time and peak RSS are compared with the same analysis over a 1 MiB input and with
gd-doctor's idle RSS (a subprocess that only imports gd_doctor). Targets: time <= 2x the 1 MiB
run, peak RSS <= 2x idle.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
OLD_LINE = (
    "2026-11-{day:02d}T{h:02d}:00:00.000000Z  INFO amazon_guardduty_agent: heartbeat ok seq={i}\n"
)
NEW_LINE = (
    "2026-11-30T11:{m:02d}:00.000000Z ERROR amazon_guardduty_agent: dns error: no such host\n"
)

CHILD = r"""
import json, sys, time
from pathlib import Path
from datetime import datetime, timezone
mode, arg = sys.argv[1], sys.argv[2]
from gd_doctor.checks import agent_logs as agent
from tests.hostkit import make_host, run_one
from gd_doctor.host.clock import FixedClock
t0 = time.perf_counter()
if mode == "idle":
    pass
elif mode == "logs":
    out = run_one(agent.logs, make_host(Path(arg)))
elif mode == "busy":
    t0 = time.perf_counter()  # the import of the check is not the analysis
    out = run_one(agent.logs, make_host(Path(arg),
                  clock=FixedClock(datetime(2026, 11, 30, 12, tzinfo=timezone.utc))))
    lines = sum(f.lines or 0 for f in out.facts.files)
elif mode == "journal":
    from gd_doctor.host.journal import live_journal, _with_fallback
    from gd_doctor.host.commands import SubprocessRunner
    src = _with_fallback([arg], SubprocessRunner())
    host = make_host(Path(arg).parent, journal=src,
                     clock=FixedClock(datetime(2026, 11, 30, 12, tzinfo=timezone.utc)))
    out = run_one(agent.journal, host)
dt = time.perf_counter() - t0
# VmHWM is this process image's own peak RSS. ru_maxrss is not: Linux carries the peak of the
# forked parent across execve, so it would count the parent's generated test data.
with open("/proc/self/status") as fh:
    peak = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:"))
extra = {"lines": lines, "status": out.status.value} if mode == "busy" else {}
print(json.dumps({"s": round(dt, 3), "maxrss_kib": peak, **extra}))
"""


def make_logs(root: Path, size: int) -> Path:
    d = root / "var/log/amzn-guardduty-agent"
    d.mkdir(parents=True)
    with open(d / "agent.log", "w") as fh:
        written, i = 0, 0
        while written < size:
            line = OLD_LINE.format(day=1 + (i // 100000) % 27, h=i % 24, i=i)
            fh.write(line)
            written += len(line)
            i += 1
        for m in range(60):
            fh.write(NEW_LINE.format(m=m))
    return root


BUSY_OK = "{ts}  INFO amazon_guardduty_agent::sender: heartbeat ok seq={i} events=1234 bytes=5678\n"
BUSY_ERR = (
    "{ts} ERROR amazon_guardduty_agent::sender: dns error: failed to lookup address information "
    "for guardduty-data.eu-west-1.amazonaws.com\n"
)
BUSY_FILES = ("agent.log", "agent.log.1", "agent.log.2.gz", "agent.log.3.gz", "agent.log.4")


def make_busy_logs(root: Path, per_file: int) -> Path:
    """Five files (two of them gzipped) whose every line lies inside the 24 h window, 1 % of
    them error lines: the busy case, where every line must be read."""
    import gzip
    import os

    d = root / "var/log/amzn-guardduty-agent"
    d.mkdir(parents=True)
    span = timedelta(hours=4.5)
    for k, name in enumerate(BUSY_FILES):
        start = NOW - timedelta(hours=23) + (len(BUSY_FILES) - 1 - k) * span
        step = span / per_file
        out = []
        for i in range(per_file):
            ts = (start + i * step).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            out.append((BUSY_ERR if i % 100 == 7 else BUSY_OK).format(ts=ts, i=i))
        data = "".join(out).encode()
        path = d / name
        if name.endswith(".gz"):
            with gzip.open(path, "wb") as fh:
                fh.write(data)
        else:
            path.write_bytes(data)
        stamp = (start + span).timestamp()
        os.utime(path, (stamp, stamp))
    return root


def grep_busy(root: Path) -> float:
    """Seconds ``grep -c -i -E`` with every signature pattern takes over the same lines."""
    import time

    from gd_doctor.knowledge import load

    pats = [s["pattern"].replace("(?:", "(") for s in load("log_signatures.json")["signatures"]]
    d = root / "var/log/amzn-guardduty-agent"
    plain = " ".join(str(d / n) for n in BUSY_FILES if not n.endswith(".gz"))
    gz = " ".join(str(d / n) for n in BUSY_FILES if n.endswith(".gz"))
    pat = "|".join(f"({p})" for p in pats).replace("'", "'\\''")
    cmd = f"(cat {plain}; zcat {gz}) | grep -c -i -E '{pat}'"
    t0 = time.perf_counter()
    subprocess.run(["sh", "-c", cmd], capture_output=True, check=False, timeout=120)
    return time.perf_counter() - t0


def _spread(xs: "list[float]") -> str:
    import statistics

    return f"median {statistics.median(xs):.3f} s (min {min(xs):.3f}, max {max(xs):.3f})"


def make_journal(root: Path, entries: int) -> Path:
    from tests.harness.journal_files import journal_from_export

    # All but the last 1000 entries lie 30 to 2 days back; the last 1000 fill the 24 h window,
    # so the big journal's window holds what the small one (1000 entries) holds.
    old = max(0, entries - 1000)
    old_start, old_step = (NOW - timedelta(days=30)).timestamp(), 28 * 86400 / max(old, 1)
    new_start, new_step = (NOW - timedelta(hours=23)).timestamp(), 22 * 3600 / 1000

    def stream() -> bytes:
        out = bytearray()
        for i in range(entries):
            at = old_start + i * old_step if i < old else new_start + (i - old) * new_step
            usec = int(at * 1_000_000)
            msg = "ERROR dns error" if i > entries - 100 else "INFO heartbeat"
            out += (
                f"__REALTIME_TIMESTAMP={usec}\n__MONOTONIC_TIMESTAMP={i + 1}\n"
                f"_BOOT_ID=c0332795f6f8475c817c805df24babc5\n_TRANSPORT=stdout\n"
                f"_SYSTEMD_UNIT=amazon-guardduty-agent.service\nMESSAGE={msg} {i}\n\n"
            ).encode()
        return bytes(out)

    return journal_from_export(stream(), root / "j")


def child(mode: str, arg: str) -> dict:  # type: ignore[type-arg]
    res = subprocess.run(
        [sys.executable, "-c", CHILD, mode, arg],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--log-mib", type=int, default=1024)
    ap.add_argument("--journal-entries", type=int, default=1_000_000)
    ap.add_argument("--no-journal", action="store_true")
    ap.add_argument("--busy-lines", type=int, default=50_000, help="in-window lines per file")
    ap.add_argument("-n", "--runs", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_busy_logs(Path(tmp) / "busy", a.busy_lines)
        ours, grep = [], []
        for _ in range(a.runs):  # interleaved: both see the same machine load
            res = child("busy", str(root))
            ours.append(res["s"])
            grep.append(grep_busy(root))
        ratio = [o / g for o, g in zip(ours, grep)]
        print(
            f"busy logs, {len(BUSY_FILES)} files (2 gzipped), {res['lines']} in-window lines "
            f"read ({res['status']}): agent.logs {_spread(ours)}; grep -c {_spread(grep)}; "
            f"ratio median {sorted(ratio)[len(ratio) // 2]:.2f} "
            f"(min {min(ratio):.2f}, max {max(ratio):.2f}; target <= 3)"
        )
    idle = child("idle", "-")
    print(f"idle: {idle}")
    with tempfile.TemporaryDirectory() as tmp:
        small = child("logs", str(make_logs(Path(tmp) / "small", 1 << 20)))
        big = child("logs", str(make_logs(Path(tmp) / "big", a.log_mib << 20)))
        print(f"logs 1 MiB: {small}  logs {a.log_mib} MiB: {big}")
        print(
            f"  time ratio {big['s'] / max(small['s'], 1e-3):.2f} (target <= 2), "
            f"RSS ratio to idle {big['maxrss_kib'] / idle['maxrss_kib']:.2f} (target <= 2)"
        )
        if not a.no_journal:
            js = child("journal", str(make_journal(Path(tmp) / "js", 1000)))
            jb = child("journal", str(make_journal(Path(tmp) / "jb", a.journal_entries)))
            print(f"journal 1k entries: {js}  journal {a.journal_entries}: {jb}")
            print(
                f"  time ratio {jb['s'] / max(js['s'], 1e-3):.2f}, RSS ratio to idle "
                f"{jb['maxrss_kib'] / idle['maxrss_kib']:.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
