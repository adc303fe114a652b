"""Checks of what the GuardDuty agent left in logs: its journal, its log files, the kernel's ring
buffer, and the known error signatures in them.

What they read (exact commands and paths):

* ``agent.journal``: the unit's entries and kernel OOM lines since ``--since``, through
  systemd-python's ``journal.Reader`` or ``journalctl -o json``.
* ``agent.kernel_log`` (live): ``dmesg --time-format=iso --kernel --nopager``.
* ``agent.logs``: every file under ``/var/log/amzn-guardduty-agent/``, read from the end.

Each line is matched against ``knowledge/log_signatures.json``; the hits are typed
:class:`~gd_doctor.facts.agent_logs.SignatureHit` values of :class:`JournalFacts` and
:class:`LogFacts` (see :mod:`gd_doctor.facts.agent_logs` for every field).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import field
from datetime import datetime
from typing import List, Optional, Sequence, Tuple

from gd_doctor.checks.base import Check, Context, check, fail, not_applicable, ok, skip, warn
from gd_doctor.checks.ring_buffer import read_ring_buffer
from gd_doctor.facts.agent_logs import (
    JournalFacts,
    KernelLogFacts,
    LogFacts,
    LogFile,
    SignatureCounter,
    SignatureHit,
)
from gd_doctor.frozen import dataclass
from gd_doctor.host import timeouts
from gd_doctor.host.journal import JournalUnavailable
from gd_doctor.host.logfiles import decode_line, decode_lines, list_log_files, read_log_file
from gd_doctor.model import Outcome, SkipReason
from gd_doctor.parsers.agent_log import endpoint_host_in, line_timestamp, parse_agent_log_line
from gd_doctor.parsers.dmesg import KernelLine, parse_dmesg_iso
from gd_doctor.parsers.journal_events import OOM_KILL_MARK, kernel_oom_kill, summarise_unit
from gd_doctor.parsers.log_signatures import (
    Signature,
    candidate_indexes,
    first_match,
    prefilter_literals,
    required_literals,
    signatures,
)
from gd_doctor.redact import redact

__all__ = ["CHECKS", "Signature", "prefilter_literals", "required_literals", "signatures"]

UNIT = "amazon-guardduty-agent.service"
LOG_DIR = "/var/log/amzn-guardduty-agent"
COMM = UNIT.replace(".service", "")[:15]  # the kernel cuts comm to 15 characters
MiB = 1024 * 1024
MAX_JOURNAL_ENTRIES = 20_000
LOG_BYTES_PER_FILE = 8 * MiB  # plain files are read backwards and stop at --since first
# A .gz file is streamed to its end, where its in-window lines are: its decompressed bytes are
# bounded by its share of the time (below) and this cap, not by what plain files used.
LOG_GZ_BYTES_PER_FILE = 1024 * MiB
LOG_BYTES_TOTAL = 64 * MiB  # over the plain files
GZ_TIME_WEIGHT = 2  # a .gz file's share of the time against a plain file's
LOG_TIME_RESERVE = 0.5  # seconds kept for the rest of the run
MAX_LOG_LINE = 8192
MAX_LINES_PER_FILE = 50_000
MAX_LINE_SHOWN = 400
PAIRING_WINDOW_S = 5  # systemd notices the death right after the kernel's line


# --------------------------------------------------------------------------------------------
# Signatures


def _candidates(lines: Sequence[str], literals: Optional[Tuple[str, ...]]) -> List[int]:
    """Indexes of the decoded ``lines`` that may match a signature or name an endpoint (the
    prefilter of :func:`~gd_doctor.parsers.log_signatures.candidate_indexes`; ``literals``
    None: every line)."""
    if literals is None:
        return list(range(len(lines)))
    return candidate_indexes([line.encode("utf-8", "surrogatepass") for line in lines])


class SignatureMatches:
    """Matches lines against the signatures (first match wins) and counts the hits."""

    def __init__(self) -> None:
        self.counter = SignatureCounter()

    def feed(self, when: Optional[datetime], message: str, where: str) -> None:
        sig = first_match(message)
        if sig is not None:
            stamp = f"{when.isoformat()} " if when else ""
            line = f"{where}: {stamp}{message[:MAX_LINE_SHOWN]}"
            self.counter.add(sig.id, (sig.finding, sig.issue, sig.show), when, line)

    def absorb(self, later: "SignatureMatches") -> None:
        """Count ``later``'s lines as if they had been fed after this one's."""
        self.counter.extend(later.counter)

    def hits(self) -> Tuple[SignatureHit, ...]:
        return self.counter.hits()


def _hit_lines(hits: Sequence[SignatureHit]) -> Tuple[str, ...]:
    return tuple(line for hit in hits for line in hit.lines)


def _window(since: datetime) -> str:
    return f"{since:%Y-%m-%d %H:%M}"


# --------------------------------------------------------------------------------------------
# agent.journal


@check(
    "agent.journal",
    title="the agent's journal shows no crashes, restarts or OOM kills",
    category="agent",
    facts=JournalFacts,
)
def journal(ctx: Context) -> Outcome:
    """Reads the unit's journal entries (and kernel OOM lines) since --since, through
    systemd-python's journal.Reader or `journalctl -o json`."""
    since = ctx.host.clock.now() - ctx.options.since
    try:
        entries = ctx.host.journal.read(
            units=[UNIT],
            since=since,
            kernel=True,
            timeout=ctx.timeout(timeouts.JOURNAL),
            max_entries=MAX_JOURNAL_ENTRIES,
        )
    except JournalUnavailable as exc:
        reason = redact(str(exc))
        facts = JournalFacts.cannot_read(reason, source=ctx.host.journal.description)
        if ctx.host.euid != 0 and "ermission" in reason:
            return skip(SkipReason.NEEDS_ROOT, f"cannot read the journal: {reason}", facts=facts)
        return warn(f"cannot read the journal: {reason}", facts=facts)
    hist = summarise_unit(entries, UNIT)
    matches = SignatureMatches()
    for when, message in hist.agent_lines:
        matches.feed(when, message, "journal")
    hits = matches.hits()
    facts = JournalFacts.from_history(
        hist,
        entries=len(entries),
        signatures=hits,
        source=ctx.host.journal.description,
        since=since,
    )
    evidence = tuple(redact(e) for e in hist.evidence[-6:]) + _hit_lines(hits)
    return _judge_journal(facts, since, evidence)


def _judge_journal(facts: JournalFacts, since: datetime, evidence: Tuple[str, ...]) -> Outcome:
    if not facts.entries:
        return ok(f"no journal entries for {UNIT} since {_window(since)} UTC", facts=facts)
    if facts.oom_kills:
        return fail(
            f"the agent was killed for lack of memory {facts.oom_kills} time(s) since "
            f"{_window(since)}",
            evidence=evidence,
            facts=facts,
        )
    if facts.restart_loop:
        every = facts.restart_interval_s
        how_often = f", about every {every:.0f} s" if every else ""
        return fail(
            f"restart loop: {facts.starts} starts and {facts.failed_exits} failed exits{how_often}",
            evidence=evidence,
            facts=facts,
        )
    if facts.failed_exits or facts.signatures:
        return warn(
            f"{facts.failed_exits} failed exit(s) and {len(facts.signatures)} kind(s) of error "
            "lines in the window",
            evidence=evidence,
            facts=facts,
        )
    return ok(f"{facts.entries} entries, {facts.starts} start(s), no failures", facts=facts)


# --------------------------------------------------------------------------------------------
# agent.kernel_log


@check(
    "agent.kernel_log",
    title="the kernel's ring buffer shows no OOM kill of the agent",
    category="agent",
    facts=KernelLogFacts,
    reads=(JournalFacts,),
    needs=("live",),
)
def kernel_log(ctx: Context) -> Outcome:
    """Reads `dmesg --time-format=iso --kernel` for cgroup OOM kills of the agent since --since:
    the ring buffer keeps them when the journal does not (volatile storage, a container)."""
    res = read_ring_buffer(ctx)
    if res.problem == "not found":
        return not_applicable("dmesg is not installed")
    if res.problem:
        return warn(f"dmesg: {res.problem}", facts=KernelLogFacts.cannot_read(res.problem))
    if res.returncode != 0:
        err = res.stderr.strip().splitlines()
        reason = redact(err[-1] if err else f"exit code {res.returncode}")
        if "not permitted" in reason or "ermission" in reason:
            # kernel.dmesg_restrict=1: only root (CAP_SYSLOG) reads the ring buffer
            return skip(SkipReason.NEEDS_ROOT, f"the kernel ring buffer needs root: {reason}")
        return warn(f"dmesg failed: {reason}", facts=KernelLogFacts.cannot_read(reason))
    since = ctx.host.clock.now() - ctx.options.since
    # only lines that can be kills are parsed: a ring buffer holds thousands of other lines
    candidates = "\n".join(ln for ln in res.stdout.splitlines() if OOM_KILL_MARK in ln)
    named = [
        line
        for line in parse_dmesg_iso(candidates)
        if line.timestamp >= since and kernel_oom_kill(line.message, COMM)
    ]
    # The ring buffer is the whole kernel's (containers share it), so a kill of a process with
    # the agent's name counts only when the unit's main process died of SIGKILL at that moment.
    # Without a readable journal there is nothing to pair with: then the name has to do.
    jour = ctx.facts(JournalFacts)
    paired = jour is not None and jour.readable
    kills = _paired_with(named, jour.sigkill_exits) if jour is not None and paired else named
    shown = kills or named
    evidence = tuple(
        redact(f"{k.timestamp.isoformat()} kernel: {k.message[:300]}") for k in shown[-5:]
    )
    facts = KernelLogFacts(
        oom_kills=len(kills),
        named_oom_kills=len(named),
        paired_with_journal=paired,
        last_oom_kill=kills[-1].timestamp.isoformat() if kills else None,
        since=since.isoformat(),
        lines=evidence,
    )
    window = f"since {_window(since)} UTC"
    if kills:
        return fail(
            f"the kernel killed the agent's process for lack of memory {len(kills)} time(s) "
            + window,
            evidence=evidence,
            facts=facts,
        )
    if named:
        return warn(
            f"{len(named)} OOM kill(s) of a process named {COMM} {window}, none of them the "
            "unit's main process",
            evidence=evidence,
            facts=facts,
        )
    return ok(f"no OOM kill of {COMM} in the kernel ring buffer {window}", facts=facts)


def _paired_with(kills: List[KernelLine], sigkill_exits: Sequence[str]) -> List[KernelLine]:
    """The kernel kills that the journal shows as the unit's main process dying of SIGKILL
    within a few seconds."""
    times = []
    for raw in sigkill_exits:
        try:
            times.append(datetime.fromisoformat(raw))
        except ValueError:
            continue
    return [
        k
        for k in kills
        if any(abs((k.timestamp - t).total_seconds()) <= PAIRING_WINDOW_S for t in times)
    ]


# --------------------------------------------------------------------------------------------
# agent.logs


@dataclass
class _LogScan:
    """What reading the log files gathered (mutable while reading)."""

    matches: SignatureMatches
    files: List[LogFile]
    problems: List[str]
    endpoints: List[Tuple[str, str]]  # (host, region) of every endpoint name the agent wrote
    last_lines: List[str]
    per_file: List[SignatureMatches] = field(default_factory=list)  # newest file first


def _analyse(scan: _LogScan, name: str, raws: List[bytes], year: int) -> None:
    """Parse and match the lines of one file that the prefilter keeps (all the others can
    match nothing): one cheap pass over the file's bytes, a full parse of few lines."""
    matches = SignatureMatches()
    for i in candidate_indexes(raws):
        parsed = parse_agent_log_line(decode_line(raws[i]), year)
        matches.feed(parsed.timestamp, parsed.message, name)
        host = endpoint_host_in(parsed.message)
        if host is not None:
            scan.endpoints.append(host)
    scan.per_file.append(matches)


def _time_share(ctx: Context, paths: Sequence[str]) -> float:
    """Seconds the first of ``paths`` (the files still to read) may take: its weighted share
    of what is left, so a slow early file never eats a later .gz file's time; what a file
    leaves unused goes to the ones after it."""
    weights = [GZ_TIME_WEIGHT if p.endswith(".gz") else 1 for p in paths]
    left = ctx.remaining() - LOG_TIME_RESERVE
    cap = timeouts.LOG_FILE * weights[0]
    return max(0.05, min(cap, left * weights[0] / sum(weights)))


def _scan_logs(ctx: Context, since: datetime) -> _LogScan:
    fs = ctx.host.fs
    year = ctx.host.clock.now().year

    def too_old(line: str) -> bool:
        at = line_timestamp(line, year)
        return at is not None and at < since

    scan = _LogScan(SignatureMatches(), [], [], [], [])
    listed = list_log_files(fs, LOG_DIR)  # newest first: the newest lines matter most
    files: List[Optional[LogFile]] = [None] * len(listed)
    todo: List[int] = []
    for k, path in enumerate(listed):
        st = fs.stat(path)
        if st is not None and st.st_mtime < since.timestamp():  # last written before --since
            files[k] = LogFile(path, size=st.st_size, skipped="older than --since")
        else:
            todo.append(k)
    budget = LOG_BYTES_TOTAL  # plain files only: a .gz file's bytes do not count against it
    for n, k in enumerate(todo):
        path = listed[k]
        gz = path.endswith(".gz")
        if (not gz and budget <= 0) or ctx.remaining() < LOG_TIME_RESERVE:
            files[k] = LogFile(path, skipped="read budget spent")
            continue
        res = read_log_file(
            fs,
            path,
            too_old,
            max_bytes=LOG_GZ_BYTES_PER_FILE if gz else min(LOG_BYTES_PER_FILE, budget),
            max_line=MAX_LOG_LINE,
            max_lines=MAX_LINES_PER_FILE,
            timeout=_time_share(ctx, [listed[j] for j in todo[n:]]),
        )
        if not gz:
            budget -= res.bytes_read
        files[k] = LogFile(path, res.size, len(res.raw_lines), res.problem, res.capped)
        if res.problem:
            scan.problems.append(f"{path}: {res.problem}")
        _analyse(scan, path.rsplit("/", 1)[1], res.raw_lines, year)
        if res.raw_lines and not scan.last_lines:
            scan.last_lines = [redact(x[:300]) for x in decode_lines(res.raw_lines[-5:])]
    scan.files = [f for f in files if f is not None]
    for matches in reversed(scan.per_file):  # oldest file first: the hits in time order
        scan.matches.absorb(matches)
    return scan


@check(
    "agent.logs",
    title="the agent's log files show no known errors",
    category="agent",
    facts=LogFacts,
    needs=("root-user",),
)
def logs(ctx: Context) -> Outcome:
    """Reads every file under /var/log/amzn-guardduty-agent/ (rotated and .gz too) from the end,
    back to --since, and matches each line against knowledge/log_signatures.json."""
    fs = ctx.host.fs
    if not fs.is_dir(LOG_DIR):
        problem = fs.listdir_problem(LOG_DIR)
        if problem == "permission denied":
            facts = LogFacts.cannot_read(LOG_DIR, problem)
            return skip(SkipReason.NEEDS_ROOT, f"{LOG_DIR} is not readable", facts=facts)
        return not_applicable(f"{LOG_DIR} does not exist", facts=LogFacts.absent(LOG_DIR))
    since = ctx.host.clock.now() - ctx.options.since
    scan = _scan_logs(ctx, since)
    hits = scan.matches.hits()
    denied = bool(scan.problems) and all("permission denied" in p for p in scan.problems)
    facts = LogFacts(
        directory=LOG_DIR,
        exists=True,
        unreadable="permission denied" if denied and not scan.last_lines else None,
        since=since.isoformat(),
        files=tuple(scan.files),
        signatures=hits,
        problems=tuple(scan.problems),
        last_lines=tuple(scan.last_lines),
        endpoint_hosts=tuple(sorted({h for h, _ in scan.endpoints})),
        region=Counter(r for _, r in scan.endpoints).most_common(1)[0][0]
        if scan.endpoints
        else None,
    )
    if denied and ctx.host.euid != 0:
        return skip(
            SkipReason.NEEDS_ROOT,
            f"{len(scan.problems)} log file(s) not readable without root",
            facts=facts,
        )
    if hits:
        shown = "; ".join(h.show for h in hits)
        return warn(
            f"known error lines in the agent's logs: {shown}",
            evidence=_hit_lines(hits),
            facts=facts,
        )
    if scan.problems:
        return warn(
            f"{len(scan.problems)} log file(s) could not be read fully",
            evidence=tuple(redact(p) for p in scan.problems[:5]),
            facts=facts,
        )
    return ok(
        f"{facts.files_read} log file(s) read, no known error lines since {_window(since)} UTC",
        facts=facts,
    )


CHECKS: Tuple[Check, ...] = (journal, kernel_log, logs)
