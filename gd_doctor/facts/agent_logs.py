"""Typed facts of the log checks of ``checks/agent_logs.py``: the unit's journal, the agent's
log files, the kernel's ring buffer, and the signature hits found in them.

"Could not read" is always a value of its own, never folded into "absent": the journal's
``unreadable`` holds the reason it could not be read, the log directory's ``unreadable`` says
it could not be listed (which is not "no error lines"), and ``KernelLogFacts.oom_kills`` is
None when dmesg could not be read.

Field names are the JSON report's ``data`` keys (``agent.logs`` ``signatures``/``region`` are
read by the network domain).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.model import Facts
from gd_doctor.parsers.journal_events import UnitHistory
from gd_doctor.redact import redact

EVIDENCE_PER_SIGNATURE = 3
MAX_OOM_LINES = 6


# --------------------------------------------------------------------------------------------
# Signature hits (journal and log files)


@dataclass(frozen=True)
class SignatureHit:
    """Lines matching one signature of ``knowledge/log_signatures.json``."""

    id: str
    finding: str
    issue: Optional[str]
    show: str
    count: int
    first: Optional[str]  # ISO timestamps of the first and last matching line
    last: Optional[str]
    lines: Tuple[str, ...] = ()  # a few redacted matching lines (first ones and the latest)

    def plus(self, other: "SignatureHit") -> "SignatureHit":
        """The two hits of one signature as one (journal plus log files)."""
        stamps = [s for s in (self.first, other.first, self.last, other.last) if s]
        lines = tuple(dict.fromkeys(self.lines + other.lines))
        return replace(
            self,
            count=self.count + other.count,
            first=min(stamps) if stamps else None,
            last=max(stamps) if stamps else None,
            lines=lines[: 2 * EVIDENCE_PER_SIGNATURE],
        )


def merge_hits(*groups: Iterable[SignatureHit]) -> Tuple[SignatureHit, ...]:
    """One hit per signature id over several sources, in first-seen order."""
    merged: Dict[str, SignatureHit] = {}
    for group in groups:
        for hit in group:
            prev = merged.get(hit.id)
            merged[hit.id] = hit if prev is None else prev.plus(hit)
    return tuple(merged.values())


class SignatureCounter:
    """Counts matches per signature while lines are fed; :meth:`hits` gives the typed result."""

    def __init__(self) -> None:
        self._counts: Dict[str, int] = {}
        self._first: Dict[str, Optional[str]] = {}
        self._last: Dict[str, Optional[str]] = {}
        self._lines: Dict[str, List[str]] = {}
        self._meta: Dict[str, Tuple[str, Optional[str], str]] = {}

    def add(
        self,
        sig_id: str,
        meta: Tuple[str, Optional[str], str],
        when: Optional[datetime],
        line: str,
    ) -> None:
        """One matching line (``meta``: finding, issue, show of the signature)."""
        stamp = when.isoformat() if when else None
        self._meta.setdefault(sig_id, meta)
        self._counts[sig_id] = self._counts.get(sig_id, 0) + 1
        if stamp:
            self._first[sig_id] = self._first.get(sig_id) or stamp
            self._last[sig_id] = stamp
        kept = self._lines.setdefault(sig_id, [])
        self._keep(kept, line)  # redacted in hits(): only the kept lines are, once

    @staticmethod
    def _keep(kept: List[str], line: str) -> None:
        if len(kept) < EVIDENCE_PER_SIGNATURE:
            kept.append(line)
        else:  # keep the first ones and the latest
            kept[-1] = line

    def extend(self, later: "SignatureCounter") -> None:
        """Count ``later``'s lines as if they had been added after this one's.

        Exact: ``later`` kept its first lines and its latest one, and those are all that
        adding its lines one by one would have left here.
        """
        for sig_id, count in later._counts.items():
            self._meta.setdefault(sig_id, later._meta[sig_id])
            self._counts[sig_id] = self._counts.get(sig_id, 0) + count
            if later._first.get(sig_id):
                self._first[sig_id] = self._first.get(sig_id) or later._first[sig_id]
                self._last[sig_id] = later._last[sig_id]
            kept = self._lines.setdefault(sig_id, [])
            for line in later._lines.get(sig_id, ()):
                self._keep(kept, line)

    def hits(self) -> Tuple[SignatureHit, ...]:
        return tuple(
            SignatureHit(
                id=sig_id,
                finding=self._meta[sig_id][0],
                issue=self._meta[sig_id][1],
                show=self._meta[sig_id][2],
                count=count,
                first=self._first.get(sig_id),
                last=self._last.get(sig_id),
                lines=tuple(redact(line) for line in self._lines.get(sig_id, ())),
            )
            for sig_id, count in self._counts.items()
        )


# --------------------------------------------------------------------------------------------
# agent.journal


@dataclass(frozen=True)
class JournalFacts(Facts):
    """The unit's journal in the window. ``unreadable`` set: it could not be read at all (the
    counts are then 0 and mean nothing)."""

    unreadable: Optional[str]
    source: Optional[str] = None
    since: Optional[str] = None
    entries: int = 0
    starts: int = 0
    failed_exits: int = 0
    exit_codes: Tuple[int, ...] = ()
    signals: Tuple[str, ...] = ()
    failure_results: Tuple[str, ...] = ()
    restarts_scheduled: int = 0
    max_restart_counter: Optional[int] = None
    restart_interval_s: Optional[float] = None
    oom_kills: int = 0
    start_limit_hit: bool = False
    last_clean_run: Optional[str] = None
    last_start: Optional[str] = None
    sigkill_exits: Tuple[str, ...] = ()  # when the main process died of SIGKILL (ISO)
    oom_lines: Tuple[str, ...] = ()  # the latest redacted journal lines about OOM kills
    signatures: Tuple[SignatureHit, ...] = ()

    @classmethod
    def from_history(
        cls,
        hist: UnitHistory,
        *,
        entries: int,
        signatures: Sequence[SignatureHit],
        source: str,
        since: datetime,
    ) -> "JournalFacts":
        exits = hist.failed_exits()
        return cls(
            unreadable=None,
            source=source,
            since=since.isoformat(),
            entries=entries,
            starts=len(hist.starts),
            failed_exits=len(exits),
            exit_codes=tuple(sorted({e.status for e in exits if e.code == "exited"})),
            signals=tuple(sorted({e.name or str(e.status) for e in exits if e.code != "exited"})),
            failure_results=tuple(sorted(set(hist.failure_results))),
            restarts_scheduled=hist.restarts_scheduled,
            max_restart_counter=hist.max_restart_counter,
            restart_interval_s=hist.restart_interval_s(),
            oom_kills=hist.oom_count(),
            start_limit_hit=hist.start_limit_hit,
            last_clean_run=hist.last_clean_run,
            last_start=hist.starts[-1] if hist.starts else None,
            sigkill_exits=tuple(e.at for e in exits if e.code == "killed" and e.status == 9)[-50:],
            oom_lines=tuple(
                redact(e) for e in hist.evidence if "oom" in e.lower() or "memory" in e
            )[-MAX_OOM_LINES:],
            signatures=tuple(signatures),
        )

    @classmethod
    def cannot_read(cls, reason: str, *, source: Optional[str] = None) -> "JournalFacts":
        return cls(unreadable=reason, source=source)

    @property
    def readable(self) -> bool:
        return self.unreadable is None

    @property
    def restart_loop(self) -> bool:
        """Three failed exits in the window, or systemd gave up (start limit)."""
        return self.readable and (self.failed_exits >= 3 or self.start_limit_hit)


# --------------------------------------------------------------------------------------------
# agent.logs


@dataclass(frozen=True)
class LogFile:
    """One file of the log directory and how it was read."""

    path: str
    size: Optional[int] = None
    lines: Optional[int] = None  # None: not read (see skipped)
    problem: Optional[str] = None
    capped: bool = False
    skipped: Optional[str] = None  # "older than --since" | "read budget spent"


@dataclass(frozen=True)
class LogFacts(Facts):
    """The agent's log files. ``exists`` False: no log directory; ``unreadable`` set: the
    directory or every file in it could not be read (which is not "no error lines")."""

    directory: str
    exists: bool
    unreadable: Optional[str] = None
    since: Optional[str] = None
    files: Tuple[LogFile, ...] = ()
    signatures: Tuple[SignatureHit, ...] = ()
    problems: Tuple[str, ...] = ()
    last_lines: Tuple[str, ...] = ()
    # The guardduty-data names the agent itself wrote, and their most frequent Region: the
    # region-mismatch rule compares it with the instance's.
    endpoint_hosts: Tuple[str, ...] = ()
    region: Optional[str] = None

    @classmethod
    def absent(cls, directory: str) -> "LogFacts":
        return cls(directory=directory, exists=False)

    @classmethod
    def cannot_read(cls, directory: str, reason: str) -> "LogFacts":
        return cls(directory=directory, exists=True, unreadable=reason)

    @property
    def files_read(self) -> int:
        return sum(1 for f in self.files if f.lines is not None)


# --------------------------------------------------------------------------------------------
# agent.kernel_log


@dataclass(frozen=True)
class KernelLogFacts(Facts):
    """cgroup OOM kills of the agent in the kernel ring buffer. ``oom_kills`` None: dmesg could
    not be read (``problem``)."""

    oom_kills: Optional[int]
    named_oom_kills: int = 0  # kills of a process with the agent's name, paired or not
    paired_with_journal: bool = False
    last_oom_kill: Optional[str] = None
    since: Optional[str] = None
    problem: Optional[str] = None
    lines: Tuple[str, ...] = ()  # the latest redacted kill lines (paired ones when paired)

    @classmethod
    def cannot_read(cls, problem: str) -> "KernelLogFacts":
        return cls(oom_kills=None, problem=problem)
