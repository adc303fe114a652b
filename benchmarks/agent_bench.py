"""Benchmark of the agent log and journal analysis, each figure against a baseline measured in
the same run.

    python -m benchmarks.agent_bench [--runs 5] [--busy-lines 50000] [--journal-entries 1000000]

Every figure is the median of ``--runs`` runs with its min-max; a ratio is computed run by run
against its baseline, the two measured back to back (interleaved), so both see the same load.
Each analysis runs in a fresh subprocess (``CHILD``): its time is the check's own (imports
excluded), its memory the process's peak RSS (VmHWM). Inputs are generated in a temporary
directory, never in git:

* **busy logs**: five files (two of them gzipped, all rotated into the window) whose every line
  lies inside the 24 h window, 1 % of them error lines, against ``grep -c -i -E`` with the
  signature patterns over the same lines (``cat`` and ``zcat`` piped into it). Target: <= 3x.
  The same lines must also finish well inside the default run budget (<= 25 % of it).
* **a big log directory, window at its end**: ``--log-mib`` of old lines and 60 in-window
  error lines at the end, against the same analysis over 1 MiB (time) and a process that only
  imports gd-doctor (peak RSS). Targets: <= 2x each.
* **busy logs, every line distinct**: the same with a random request id on every line (no
  template repeats: the prefilter's worst case). Shown, no target.
* **compressed window at the end**: a rotated ``.gz`` whose last lines are the window, behind a
  plain file, under ``--timeout 5``: every in-window line of the ``.gz`` must be counted.
* **journal, systemd-python vs journalctl**: the ``agent.journal`` check over the same journal
  files through ``journal.Reader`` and through ``journalctl``. Target: Reader <= journalctl.
* **journal, 1,000,000 vs 1,000 entries in the window**: real journal files written by
  ``systemd-journal-remote``, which rotates a large output into archive files: every file of
  the directory is passed and the entries of all of them are counted (the count is checked).
  Target: time and peak RSS of the 1M-entry window <= 2x those of the 1k-entry one.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

TOP = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
UNIT = "amazon-guardduty-agent.service"
BOOT = "c0332795f6f8475c817c805df24babc5"
TIMEOUT = 900.0  # any one subprocess of the benchmark

CHILD = r"""
import json, sys, time
from pathlib import Path
from datetime import datetime, timedelta, timezone
from functools import partial
mode, arg = sys.argv[1], sys.argv[2]
budget = float(sys.argv[3])
from gd_doctor.checks import agent_logs as agent
from gd_doctor.checks.base import Context, Options
from gd_doctor.host.clock import FixedClock
from tests.hostkit import make_host
clock = FixedClock(datetime(2026, 11, 30, 12, tzinfo=timezone.utc))
if mode == "idle":
    host, check = make_host(Path(arg), clock=clock), None
elif mode == "logs":
    host, check = make_host(Path(arg), clock=clock), agent.logs
else:
    from gd_doctor.host.commands import SubprocessRunner
    from gd_doctor.host.journal import JournalctlJournal, ReaderJournal, _with_fallback
    files = sorted(str(p) for p in Path(arg).iterdir() if p.name.endswith(".journal"))
    src = {"reader": lambda: ReaderJournal(files),
           "journalctl": lambda: JournalctlJournal(SubprocessRunner(), files),
           "journal": lambda: _with_fallback(files, SubprocessRunner())}[mode]()
    host, check = make_host(Path(arg), journal=src, clock=clock), agent.journal
t0 = time.perf_counter()  # the imports are not the analysis
ctx = Context(host, Options(), {}, host.clock.monotonic() + budget)
out = check.func(ctx) if check is not None else None
dt = time.perf_counter() - t0
# VmHWM is this process image's own peak RSS. ru_maxrss is not: Linux carries the peak of the
# forked parent across execve, so it would count the parent's generated test data.
with open("/proc/self/status") as fh:
    peak = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:"))
f = out.facts if out is not None else None
extra = {}
if mode == "logs" and f is not None:
    extra = {"lines": sum(x.lines or 0 for x in f.files),
             "hits": {h.id: h.count for h in f.signatures}}
elif f is not None:
    extra = {"entries": f.entries, "unreadable": f.unreadable, "source": f.source}
status = out.status.value if out is not None else None
print(json.dumps({"s": dt, "rss_kib": peak, "status": status, **extra}))
"""


def child(mode: str, arg: Path, budget: float = 20.0) -> Dict[str, Any]:
    res = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(arg), str(budget)],
        capture_output=True,
        text=True,
        check=True,
        cwd=TOP,
        timeout=TIMEOUT,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------
# Figures and the table


class Row:
    """One line of the table: a median with its min-max, and a target when there is one."""

    def __init__(
        self, case: str, what: str, xs: Sequence[float], unit: str, limit: Optional[float] = None
    ) -> None:
        self.case, self.what, self.xs, self.unit, self.limit = case, what, list(xs), unit, limit

    @property
    def median(self) -> float:
        return statistics.median(self.xs)

    def cells(self) -> List[str]:
        fmt = "{:.2f}" if self.unit in ("x", "s") else "{:.0f}"
        spread = f"{fmt.format(min(self.xs))}-{fmt.format(max(self.xs))}"
        target = f"<= {self.limit:g}{self.unit}" if self.limit is not None else ""
        verdict = "" if self.limit is None else ("pass" if self.median <= self.limit else "FAIL")
        return [
            self.case,
            self.what,
            fmt.format(self.median) + self.unit,
            spread,
            str(len(self.xs)),
            target,
            verdict,
        ]


class Check:
    """A yes/no condition the run established (a count, a result)."""

    def __init__(self, case: str, what: str, ok: bool, got: str) -> None:
        self.case, self.what, self.ok, self.got = case, what, ok, got

    def cells(self) -> List[str]:
        return [self.case, self.what, self.got, "", "", "", "pass" if self.ok else "FAIL"]


def table(rows: Sequence[Any]) -> str:
    head = ["case", "measure", "median", "min-max", "runs", "target", "result"]
    body = [head] + [r.cells() for r in rows]
    widths = [max(len(line[i]) for line in body) for i in range(len(head))]
    out = []
    for k, line in enumerate(body):
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def interleaved(
    runs: int, ours: Callable[[], Dict[str, Any]], base: Callable[[], float]
) -> Tuple[List[Dict[str, Any]], List[float]]:
    """``runs`` pairs of (our result, baseline seconds), measured back to back."""
    mine, theirs = [], []
    for _ in range(runs):
        mine.append(ours())
        theirs.append(base())
    return mine, theirs


# --------------------------------------------------------------------------------------------
# Log files

BUSY_OK = "{ts}  INFO amazon_guardduty_agent::sender: heartbeat ok seq={i} events=1234 bytes=5678\n"
BUSY_ERR = (
    "{ts} ERROR amazon_guardduty_agent::sender: dns error: failed to lookup address information "
    "for guardduty-data.eu-west-1.amazonaws.com\n"
)
BUSY_FILES = ("agent.log", "agent.log.1", "agent.log.2.gz", "agent.log.3.gz", "agent.log.4")
LOG_DIR = "var/log/amzn-guardduty-agent"


def _write(path: Path, lines: List[str], mtime: datetime) -> None:
    data = "".join(lines).encode()
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb", compresslevel=6) as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))


def make_busy_logs(root: Path, per_file: int, distinct: bool = False) -> Path:
    """Five rotated files (two gzipped) whose every line lies inside the 24 h window, 1 % of
    them error lines; ``distinct``: each line carries a random request id as well."""
    d = root / LOG_DIR
    d.mkdir(parents=True)
    span = timedelta(hours=4.5)
    for k, name in enumerate(BUSY_FILES):
        start = NOW - timedelta(hours=23) + (len(BUSY_FILES) - 1 - k) * span
        step = span / per_file
        lines = []
        for i in range(per_file):
            ts = (start + i * step).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            line = (BUSY_ERR if i % 100 == 7 else BUSY_OK).format(ts=ts, i=i)
            if distinct:
                line = line[:-1] + f" request_id={os.urandom(8).hex()}\n"
            lines.append(line)
        _write(d / name, lines, start + span)
    return root


def grep_seconds(root: Path) -> float:
    """Seconds ``grep -c -i -E`` with every signature pattern takes over the same lines."""
    from gd_doctor.knowledge import load

    pats = [s["pattern"].replace("(?:", "(") for s in load("log_signatures.json")["signatures"]]
    d = root / LOG_DIR
    plain = " ".join(str(p) for p in sorted(d.iterdir()) if not p.name.endswith(".gz"))
    gz = " ".join(str(p) for p in sorted(d.iterdir()) if p.name.endswith(".gz"))
    pat = "|".join(f"({p})" for p in pats).replace("'", "'\\''")
    cmd = f"(cat {plain}; zcat {gz}) | grep -c -i -E '{pat}'"
    t0 = time.perf_counter()
    subprocess.run(["sh", "-c", cmd], capture_output=True, check=False, timeout=TIMEOUT)
    return time.perf_counter() - t0


def make_gz_window_at_end(root: Path, old_lines: int, new_lines: int) -> Path:
    """A plain file of old lines (newest mtime, a whole per-file byte budget of reading) and a
    rotated .gz of ``old_lines`` old lines followed by ``new_lines`` in-window error lines."""
    d = root / LOG_DIR
    d.mkdir(parents=True)
    old_start = NOW - timedelta(days=20)
    old = [
        BUSY_OK.format(ts=(old_start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), i=i)
        for i in range(old_lines)
    ]
    new_start = NOW - timedelta(hours=12)
    new = [
        BUSY_ERR.format(ts=(new_start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        for i in range(new_lines)
    ]
    _write(d / "agent.log.1.gz", old + new, new_start + timedelta(seconds=new_lines))
    plain = [BUSY_OK.format(ts=NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), i=i) for i in range(90_000)]
    _write(d / "agent.log", plain, NOW)
    return root


# --------------------------------------------------------------------------------------------
# Journal files


def make_journal(out: Path, entries: int) -> Path:
    """A real journal of ``entries`` entries of the agent's own output, all inside the 24 h
    window, written by systemd-journal-remote (which rotates big outputs into archives)."""
    from tests.harness.journal_files import journal_remote_path

    tool = journal_remote_path()
    if tool is None:
        raise SystemExit(
            "systemd-journal-remote is missing (apt-get install systemd-journal-remote)"
        )
    out.mkdir(parents=True)
    env = dict(os.environ, SYSTEMD_JOURNAL_COMPACT="0", SYSTEMD_LOG_LEVEL="warning")
    start = (NOW - timedelta(hours=23)).timestamp()
    step = 22 * 3600 / entries
    proc = subprocess.Popen(
        [tool, f"--output={out}/system.journal", "-"], stdin=subprocess.PIPE, env=env
    )
    assert proc.stdin is not None
    chunk: List[str] = []
    for i in range(entries):
        usec = int((start + i * step) * 1_000_000)
        msg = "ERROR dns error: no such host" if i % 100 == 7 else f"INFO heartbeat ok seq={i}"
        chunk.append(
            f"__REALTIME_TIMESTAMP={usec}\n__MONOTONIC_TIMESTAMP={i + 1}\n_BOOT_ID={BOOT}\n"
            f"_TRANSPORT=stdout\n_SYSTEMD_UNIT={UNIT}\n_PID=4242\n_COMM=amazon-guardduty\n"
            f"SYSLOG_IDENTIFIER=amazon-guardduty-agent\nPRIORITY=6\nMESSAGE={msg}\n\n"
        )
        if len(chunk) == 10_000:
            proc.stdin.write("".join(chunk).encode())
            chunk = []
    proc.stdin.write("".join(chunk).encode())
    proc.stdin.close()
    if proc.wait(timeout=TIMEOUT) != 0:
        raise SystemExit(f"systemd-journal-remote failed with {proc.returncode}")
    return out


def journal_entries(directory: Path) -> Tuple[int, int]:
    """(files, entries) of every journal file in ``directory``, from their headers."""
    files = sorted(p for p in directory.iterdir() if p.name.endswith(".journal"))
    total = 0
    for f in files:
        res = subprocess.run(
            ["journalctl", "--header", f"--file={f}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        m = re.search(r"^Entry objects: (\d+)$", res.stdout, re.M)
        total += int(m.group(1)) if m else 0
    return len(files), total


# --------------------------------------------------------------------------------------------


def bench_logs(a: argparse.Namespace, tmp: Path, rows: List[Any]) -> None:
    want = 5 * a.busy_lines
    for distinct, case in ((False, "busy logs"), (True, "busy logs, distinct lines")):
        root = make_busy_logs(tmp / f"busy-{distinct}", a.busy_lines, distinct)
        mine, grep = interleaved(a.runs, partial(child, "logs", root), partial(grep_seconds, root))
        lines = mine[-1]["lines"]
        label = f"{case} ({want:,} lines, 5 files, 2 .gz)"
        ratio = [m["s"] / g for m, g in zip(mine, grep)]
        rows.append(Row(label, "agent.logs / grep -c -E", ratio, "x", None if distinct else 3))
        rows.append(Row(label, "agent.logs time", [m["s"] for m in mine], "s"))
        rows.append(Row(label, "grep -c -E time", grep, "s"))
        if not distinct:
            budget = [m["s"] / 20.0 * 100 for m in mine]
            rows.append(Row(label, "share of the 20 s budget", budget, "%", 25))
        rows.append(Check(label, "every in-window line read", lines == want, f"{lines:,}"))
        hits = mine[-1]["hits"].get("dns", 0)
        rows.append(Check(label, "every error line counted", hits == want // 100, f"{hits:,}"))
    root = make_gz_window_at_end(tmp / "gz-end", a.gz_old_lines, 1000)
    runs = [child("logs", root, budget=5.0) for _ in range(a.runs)]
    label = f".gz window at its end ({a.gz_old_lines:,} old lines), --timeout 5"
    rows.append(Row(label, "agent.logs time", [r["s"] for r in runs], "s"))
    got = min(r["hits"].get("dns", 0) for r in runs)
    rows.append(Check(label, "its 1,000 in-window lines counted", got == 1000, f"{got:,} (min)"))


OLD_LINE = "2026-11-{day:02d}T{h:02d}:00:00.000000Z  INFO amazon_guardduty_agent: heartbeat {i}\n"
NEW_LINE = (
    "2026-11-30T11:{m:02d}:00.000000Z ERROR amazon_guardduty_agent: dns error: no such host\n"
)


def make_big_log(root: Path, size: int) -> Path:
    """One log file of ``size`` bytes of old lines with the last 60 lines in the window."""
    d = root / LOG_DIR
    d.mkdir(parents=True)
    with open(d / "agent.log", "w") as fh:
        written = i = 0
        while written < size:
            block = "".join(
                OLD_LINE.format(day=1 + ((i + k) // 100_000) % 27, h=(i + k) % 24, i=i + k)
                for k in range(10_000)
            )
            fh.write(block)
            written += len(block)
            i += 10_000
        fh.write("".join(NEW_LINE.format(m=m) for m in range(60)))
    return root


def bench_big_log(a: argparse.Namespace, tmp: Path, rows: List[Any]) -> None:
    small = make_big_log(tmp / "log-small", 1 << 20)
    big = make_big_log(tmp / "log-big", a.log_mib << 20)
    smalls, bigs, idles = [], [], []
    for _ in range(a.runs):
        smalls.append(child("logs", small))
        bigs.append(child("logs", big))
        idles.append(child("idle", small))
    case = f"log directory of {a.log_mib:,} MiB, window at its end"
    ratio = [b["s"] / s["s"] for b, s in zip(bigs, smalls)]
    rows.append(Row(case, "time / same over 1 MiB", ratio, "x", 2))
    rows.append(Row(case, f"time, {a.log_mib:,} MiB", [b["s"] for b in bigs], "s"))
    rss = [b["rss_kib"] / i["rss_kib"] for b, i in zip(bigs, idles)]
    rows.append(Row(case, "peak RSS / idle gd-doctor", rss, "x", 2))
    hits = bigs[-1]["hits"].get("dns", 0)
    rows.append(Check(case, "its 60 in-window lines counted", hits == 60, str(hits)))


def bench_journal(a: argparse.Namespace, tmp: Path, rows: List[Any]) -> None:
    small = make_journal(tmp / "j-small", a.small_entries)
    print(f"writing a journal of {a.journal_entries:,} entries ...", file=sys.stderr)
    big = make_journal(tmp / "j-big", a.journal_entries)
    n_files, n_entries = journal_entries(big)
    label = f"journal of {a.journal_entries:,} entries ({n_files} files)"
    rows.append(
        Check(label, "entries in all its files", n_entries == a.journal_entries, f"{n_entries:,}")
    )
    for journal, name in ((small, f"{a.small_entries:,}"), (big, f"{a.journal_entries:,}")):
        mine, ctl = [], []
        for _ in range(a.runs):
            mine.append(child("reader", journal))
            ctl.append(child("journalctl", journal))
        case = f"journal, {name} entries in the window"
        ratio = [m["s"] / c["s"] for m, c in zip(mine, ctl)]
        rows.append(Row(case, "journal.Reader / journalctl", ratio, "x", 1))
        rows.append(Row(case, "journal.Reader time", [m["s"] for m in mine], "s"))
        rows.append(Row(case, "journalctl time", [c["s"] for c in ctl], "s"))
        same = all(m["entries"] == c["entries"] and not m["unreadable"] for m, c in zip(mine, ctl))
        rows.append(Check(case, "same entries both ways", same, str(mine[-1]["entries"])))
    bigs, smalls = [], []
    for _ in range(a.runs):
        smalls.append(child("journal", small))
        bigs.append(child("journal", big))
    case = f"journal {a.journal_entries:,} vs {a.small_entries:,} in the window (systemd-python)"
    rows.append(Row(case, "time ratio", [b["s"] / s["s"] for b, s in zip(bigs, smalls)], "x", 2))
    rss = [b["rss_kib"] / s["rss_kib"] for b, s in zip(bigs, smalls)]
    rows.append(Row(case, "peak RSS ratio", rss, "x", 2))
    rows.append(Row(case, f"time, {a.journal_entries:,}", [b["s"] for b in bigs], "s"))
    rows.append(Row(case, f"peak RSS KiB, {a.journal_entries:,}", [b["rss_kib"] for b in bigs], ""))
    rows.append(Row(case, f"peak RSS KiB, {a.small_entries:,}", [s["rss_kib"] for s in smalls], ""))
    readable = all(b["unreadable"] is None for b in bigs)
    rows.append(Check(case, "journal readable", readable, bigs[-1]["source"] or ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=5, help="runs per figure (median, min-max)")
    ap.add_argument("--busy-lines", type=int, default=50_000, help="in-window lines per file")
    ap.add_argument("--gz-old-lines", type=int, default=1_000_000)
    ap.add_argument("--journal-entries", type=int, default=1_000_000)
    ap.add_argument("--small-entries", type=int, default=1_000)
    ap.add_argument("--log-mib", type=int, default=1024, help="0: no big-log case")
    ap.add_argument("--no-journal", action="store_true")
    ap.add_argument("--no-logs", action="store_true")
    a = ap.parse_args()
    rows: List[Any] = []
    with tempfile.TemporaryDirectory(prefix="gd-doctor-agent-bench-") as tmp:
        if not a.no_logs:
            bench_logs(a, Path(tmp), rows)
        if a.log_mib:
            bench_big_log(a, Path(tmp), rows)
        if not a.no_journal:
            bench_journal(a, Path(tmp), rows)
    print(f"agent_bench: {a.runs} runs per figure, load average {os.getloadavg()[0]:.1f}")
    print(table(rows))
    failed = [r for r in rows if "FAIL" in r.cells()]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
