"""Typed facts of the agent checks (one type per check of ``checks/agent.py`` and
``checks/agent_logs.py``).

"Could not read" is always a value of its own, never folded into "absent": the package's
``installed`` is None with a ``problem`` when no database could be read, the journal's
``unreadable`` holds the reason it could not be read, and the log directory's ``unreadable``
says it could not be listed (which is not "no error lines").

Field names are the JSON report's ``data`` keys; other domains still read some of them by name
until they are migrated (``agent.unit`` ``drop_in_paths``/``environment``/
``environment_files``/``main_pid``, ``agent.process`` ``proxy_env``/``memlock_soft``,
``agent.logs`` ``signatures``/``region``, ``agent.package`` ``installed``/``version``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from gd_doctor.host.package_info import PackageInfo
from gd_doctor.host.unit_model import EffectiveUnit
from gd_doctor.model import Facts
from gd_doctor.parsers.dpkg_status import DpkgPackage
from gd_doctor.parsers.journal_events import UnitHistory
from gd_doctor.parsers.rpm import RpmPackage, VerifyProblem
from gd_doctor.parsers.systemctl_show import UnitState
from gd_doctor.parsers.unit_file import parse_size
from gd_doctor.redact import redact

EVIDENCE_PER_SIGNATURE = 3
MAX_OOM_LINES = 6


def redacted_env(pairs: Iterable[Tuple[str, str]]) -> Mapping[str, str]:
    """NAME -> value with credentials masked (proxy URLs often carry user:password@)."""
    return {name: redact(f"{name}={value}").split("=", 1)[1] for name, value in pairs}


# --------------------------------------------------------------------------------------------
# agent.package


@dataclass(frozen=True)
class PackageFacts(Facts):
    """What the package database says about amazon-guardduty-agent.

    ``installed``: True/False from a database that was read; None when none could be read
    (``problem`` says why).
    """

    installed: Optional[bool]
    problem: Optional[str] = None
    manager: Optional[str] = None  # dpkg | rpm
    version: Optional[str] = None
    release: Optional[str] = None  # rpm release
    state: Optional[str] = None  # dpkg letters, e.g. iF
    dpkg_status: Optional[str] = None  # "install ok half-configured"
    broken: bool = False
    verify_problems: Tuple[str, ...] = ()  # serious rpm -V lines ("missing /opt/...")
    verify_ran: Optional[bool] = None
    install_method: str = "manual-or-unknown"  # automated: the SSM Distributor left its files
    source: Optional[str] = None  # dpkg-query | /var/lib/dpkg/status | rpm

    @classmethod
    def from_dpkg(
        cls, pkg: Optional[DpkgPackage], *, source: str, install_method: str
    ) -> "PackageFacts":
        """From dpkg's stanza (None: dpkg knows no such package)."""
        if pkg is None or not pkg.installed:
            return cls(
                installed=False,
                manager="dpkg",
                state=pkg.abbrev if pkg else None,
                install_method=install_method,
                source=source,
            )
        return cls(
            installed=True,
            manager="dpkg",
            version=pkg.version,
            state=pkg.abbrev,
            dpkg_status=f"{pkg.want} {pkg.error} {pkg.state}",
            broken=pkg.broken,
            install_method=install_method,
            source=source,
        )

    @classmethod
    def from_rpm(
        cls,
        pkg: Optional[RpmPackage],
        *,
        install_method: str,
        verify: Optional[Sequence[VerifyProblem]] = None,
        also_asked_dpkg: bool = False,
    ) -> "PackageFacts":
        """From ``rpm -q`` (None: not installed) and ``rpm -V`` (None: it could not run)."""
        if pkg is None:
            return cls(
                installed=False,
                manager="dpkg" if also_asked_dpkg else "rpm",
                install_method=install_method,
                source="dpkg and rpm" if also_asked_dpkg else "rpm",
            )
        serious = [p for p in verify or () if p.serious]
        return cls(
            installed=True,
            manager="rpm",
            version=pkg.version,
            release=pkg.release,
            verify_problems=tuple(f"{p.flags} {p.path}" for p in serious),
            verify_ran=verify is not None,
            install_method=install_method,
            source="rpm",
        )

    @classmethod
    def from_info(
        cls,
        info: PackageInfo,
        *,
        install_method: str,
        verify: Optional[Sequence[VerifyProblem]] = None,
    ) -> "PackageFacts":
        """From the host's one package layer (host/packages.py) and, for rpm, ``rpm -V``
        (None: it did not run)."""
        if info.installed is None:
            return cls.unknown(
                info.problem or "package database unreadable", install_method=install_method
            )
        serious = [p for p in verify or () if p.serious]
        return cls(
            installed=info.installed,
            manager=info.manager,
            version=info.version if info.installed else None,
            release=info.release if info.manager == "rpm" else None,
            state=info.dpkg_state,
            dpkg_status=info.dpkg_status if info.installed else None,
            broken=info.broken,
            verify_problems=tuple(f"{p.flags} {p.path}" for p in serious),
            verify_ran=(verify is not None) if info.manager == "rpm" and info.installed else None,
            install_method=install_method,
            source=info.source,
        )

    @classmethod
    def unknown(cls, problem: str, *, install_method: str) -> "PackageFacts":
        """No package database could be read."""
        return cls(installed=None, problem=problem, install_method=install_method)


# --------------------------------------------------------------------------------------------
# agent.unit


@dataclass(frozen=True)
class UnitFacts(Facts):
    """The unit's live state, from ``systemctl show`` (environment values redacted)."""

    load_state: Optional[str]
    active_state: Optional[str]
    sub_state: Optional[str]
    unit_file_state: Optional[str] = None
    result: Optional[str] = None
    exec_main_code: Optional[str] = None
    exec_main_status: Optional[int] = None
    n_restarts: Optional[int] = None
    active_enter: Optional[str] = None
    main_pid: Optional[int] = None
    memory_max: Optional[int] = None  # bytes; None: no limit
    memory_limit: Optional[int] = None
    memory_current: Optional[int] = None
    memory_cap: Optional[int] = None  # the lower of the two limits
    cpu_quota_per_sec_usec: Optional[int] = None
    fragment_path: Optional[str] = None
    drop_in_paths: Tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    environment_files: Tuple[str, ...] = ()

    @classmethod
    def from_show(cls, st: UnitState) -> "UnitFacts":
        return cls(
            load_state=st.load_state,
            active_state=st.active_state,
            sub_state=st.sub_state,
            unit_file_state=st.unit_file_state,
            result=st.result,
            exec_main_code=st.exec_main_code,
            exec_main_status=st.exec_main_status,
            n_restarts=st.n_restarts,
            active_enter=st.active_enter,
            main_pid=st.main_pid,
            memory_max=st.memory_max,
            memory_limit=st.memory_limit,
            memory_current=st.memory_current,
            memory_cap=st.memory_cap,
            cpu_quota_per_sec_usec=st.cpu_quota_per_sec_usec,
            fragment_path=st.fragment_path,
            drop_in_paths=tuple(st.drop_in_paths),
            environment=redacted_env(st.environment),
            environment_files=tuple(st.environment_files),
        )

    @property
    def running(self) -> bool:
        return self.active_state == "active" and self.sub_state == "running"

    @property
    def auto_restarting(self) -> bool:
        return self.active_state == "activating" and self.sub_state == "auto-restart"


# --------------------------------------------------------------------------------------------
# agent.unit_file


def exec_path(exec_start: Optional[str]) -> Optional[str]:
    """The program an ``ExecStart=`` line runs, without systemd's prefixes (``-@+!:``).

    >>> exec_path("-/opt/aws/amazon-guardduty-agent/bin/amazon-guardduty-agent --x")
    '/opt/aws/amazon-guardduty-agent/bin/amazon-guardduty-agent'
    >>> exec_path(None), exec_path("  ")
    (None, None)
    """
    words = (exec_start or "").split()
    if not words:
        return None
    return words[0].lstrip("-@+!:") or None


@dataclass(frozen=True)
class UnitFileFacts(Facts):
    """The unit file and drop-ins as files (also under ``--root``).

    ``path`` None and ``masked`` False: no unit file in any unit directory. ``exec_exists``:
    whether the program ``ExecStart=`` names is there (None: no ExecStart, or not read).
    """

    path: Optional[str]
    masked: bool = False
    drop_ins: Tuple[str, ...] = ()
    exec_start: Optional[str] = None
    exec_path: Optional[str] = None
    exec_exists: Optional[bool] = None
    memory_max: Optional[int] = None
    memory_limit: Optional[int] = None
    cpu_quota: Optional[str] = None
    restart: Optional[str] = None
    limit_memlock: Optional[str] = None
    environment: Mapping[str, str] = field(default_factory=dict)
    environment_files: Tuple[str, ...] = ()
    errors: Tuple[str, ...] = ()
    unreadable: Tuple[str, ...] = ()  # "path: problem" of files that could not be read

    @classmethod
    def missing(cls) -> "UnitFileFacts":
        return cls(path=None)

    @classmethod
    def masked_at(cls, path: str) -> "UnitFileFacts":
        return cls(path=path, masked=True)

    @classmethod
    def from_unit(
        cls,
        unit: EffectiveUnit,
        *,
        total_memory: Optional[int],
        exec_exists: Optional[bool],
    ) -> "UnitFileFacts":
        """From the effective unit of the host's one systemd layer (host/units.py)."""
        exec_start = unit.exec_start[-1] if unit.exec_start else None
        return cls(
            path=unit.fragment_path,
            drop_ins=tuple(p for p in unit.drop_in_paths if p not in unit.masked_drop_ins),
            exec_start=redact(exec_start) if exec_start else None,
            exec_path=exec_path(exec_start),
            exec_exists=exec_exists,
            memory_max=parse_size(unit.memory_max, total_memory),
            memory_limit=parse_size(unit.memory_limit, total_memory),
            cpu_quota=unit.cpu_quota,
            restart=unit.restart,
            limit_memlock=unit.value("LimitMEMLOCK"),
            environment=redacted_env(unit.environment),
            environment_files=tuple(f.path for f in unit.environment_files),
            errors=tuple(unit.errors),
            unreadable=tuple(f"{path}: {why}" for path, why in unit.unreadable),
        )

    @property
    def memory_cap(self) -> Optional[int]:
        caps = [c for c in (self.memory_max, self.memory_limit) if c is not None]
        return min(caps) if caps else None

    @property
    def installs_agent(self) -> bool:
        """A usable unit file whose program is there: evidence the agent is installed."""
        return self.path is not None and not self.masked and self.exec_exists is True


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
        if len(kept) < EVIDENCE_PER_SIGNATURE:
            kept.append(redact(line))
        else:  # keep the first ones and the latest
            kept[-1] = redact(line)

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
                lines=tuple(self._lines.get(sig_id, ())),
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


# --------------------------------------------------------------------------------------------
# agent.process


@dataclass(frozen=True)
class ProcessFacts(Facts):
    """The agent's running process. ``memlock_soft``/``memlock_hard`` None mean unlimited when
    ``memlock_problem`` is None, unknown otherwise."""

    running: bool
    pid: Optional[int] = None
    name: Optional[str] = None
    exe: Optional[str] = None
    uptime_s: Optional[int] = None
    rss: Optional[int] = None
    memory_cap: Optional[int] = None
    cpu_percent: Optional[float] = None  # of the whole machine
    cpu_count: Optional[int] = None
    cpu_budget_percent: Optional[float] = None
    threads: Optional[int] = None
    proxy_env: Mapping[str, str] = field(default_factory=dict)
    environ_problem: Optional[str] = None
    total_memory: Optional[int] = None
    memlock_soft: Optional[int] = None
    memlock_hard: Optional[int] = None
    memlock_problem: Optional[str] = None

    @classmethod
    def not_running(cls, pid: Optional[int] = None) -> "ProcessFacts":
        return cls(running=False, pid=pid)

    @property
    def memlock_known(self) -> bool:
        return self.running and self.memlock_problem is None and self.pid is not None


# --------------------------------------------------------------------------------------------
# agent.memory_limit and agent.version_kernel


@dataclass(frozen=True)
class MemoryLimitFacts(Facts):
    """The unit's memory cap against AWS's documented cap (None: unknown or no limit)."""

    limit: Optional[int]
    documented: Optional[int] = None
    total_memory: Optional[int] = None

    @property
    def below_documented(self) -> bool:
        return (
            self.limit is not None
            and self.documented is not None
            and (self.limit < self.documented)
        )


@dataclass(frozen=True)
class VersionKernelFacts(Facts):
    """The installed agent version against the oldest agent the kernel series needs."""

    kernel: str
    series: str
    version: str
    needed: Optional[str] = None  # None: every known agent supports the series
    newest_known: Optional[str] = None  # the newest kernel series of the release history
    table_date: Optional[str] = None
