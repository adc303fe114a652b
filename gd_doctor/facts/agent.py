"""Typed facts of the agent checks of ``checks/agent.py`` (one type per check); the facts of
the log checks (``checks/agent_logs.py``: journal, log files, kernel ring buffer) are in
:mod:`gd_doctor.facts.agent_logs`.

"Could not read" is always a value of its own, never folded into "absent": the package's
``installed`` is None with a ``problem`` when no database could be read.

Field names are the JSON report's ``data`` keys; other domains still read some of them by name
until they are migrated (``agent.unit`` ``drop_in_paths``/``environment``/
``environment_files``/``main_pid``, ``agent.process`` ``proxy_env``/``memlock_soft``,
``agent.package`` ``installed``/``version``).
"""

from __future__ import annotations

from dataclasses import field
from typing import Iterable, Mapping, Optional, Sequence, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.host.package_info import PackageInfo
from gd_doctor.host.unit_model import EffectiveUnit
from gd_doctor.model import Facts
from gd_doctor.parsers.dpkg_status import DpkgPackage
from gd_doctor.parsers.rpm import RpmPackage, VerifyProblem
from gd_doctor.parsers.systemctl_show import UnitState
from gd_doctor.parsers.unit_file import parse_size
from gd_doctor.redact import redact


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


__all__ = [
    "MemoryLimitFacts",
    "PackageFacts",
    "ProcessFacts",
    "UnitFacts",
    "UnitFileFacts",
    "VersionKernelFacts",
    "exec_path",
    "redacted_env",
]
