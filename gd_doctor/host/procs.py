"""Processes of the live host (through psutil, imported lazily).

:class:`ProcessTable` looks a process up by PID (the unit's MainPID) or by name prefix: the
kernel cuts ``comm`` to 15 characters, so ``amazon-guardduty-agent`` shows as ``amazon-guarddut``
(guardduty.md section 2). Only reads: nothing here signals or changes a process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Protocol, Tuple

PROXY_VARIABLES = (
    "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
    "ALL_PROXY", "all_proxy",
)  # fmt: skip


class ProcessUnavailable(Exception):
    """The process table cannot be read (no psutil, analysing a root); message says why."""


@dataclass(frozen=True)
class ProcessInfo:
    """What gd-doctor reads about one process; ``None`` where it could not be read."""

    pid: int
    name: str
    exe: Optional[str] = None
    cmdline: Tuple[str, ...] = ()
    create_time: Optional[float] = None  # seconds since the epoch
    rss: Optional[int] = None  # bytes
    cpu_percent: Optional[float] = None  # of one CPU, over the sampling interval
    num_threads: Optional[int] = None
    environ: Optional[Mapping[str, str]] = None  # only the proxy variables; None: not readable
    environ_problem: Optional[str] = None
    cpu_count: Optional[int] = None
    total_memory: Optional[int] = None


class ProcessTable(Protocol):
    """Looks up processes by PID or name prefix."""

    description: str

    def get(self, pid: int, *, cpu_interval: float = 0.0) -> Optional[ProcessInfo]:
        """The process with this PID, or None when there is none."""
        ...

    def find(self, name_prefix: str) -> List[int]:
        """PIDs whose name (``comm``) or executable name starts with the prefix."""
        ...


class UnavailableProcesses:
    """No live processes: analysing a root."""

    def __init__(self, reason: str) -> None:
        self.description = f"unavailable ({reason})"
        self.reason = reason

    def get(self, pid: int, *, cpu_interval: float = 0.0) -> Optional[ProcessInfo]:
        raise ProcessUnavailable(self.reason)

    def find(self, name_prefix: str) -> List[int]:
        raise ProcessUnavailable(self.reason)


@dataclass
class FakeProcesses:
    """A process table from given values (tests, and the ``--root`` documentation examples)."""

    processes: List[ProcessInfo] = field(default_factory=list)
    description: str = "fake process table"

    def get(self, pid: int, *, cpu_interval: float = 0.0) -> Optional[ProcessInfo]:
        return next((p for p in self.processes if p.pid == pid), None)

    def find(self, name_prefix: str) -> List[int]:
        return [p.pid for p in self.processes if _name_matches(p.name, p.exe, name_prefix)]


def _name_matches(name: str, exe: Optional[str], prefix: str) -> bool:
    base = (exe or "").rsplit("/", 1)[-1]
    # comm is cut to 15 characters, so compare only that much of the prefix.
    return (bool(name) and name.startswith(prefix[:15])) or (bool(base) and base.startswith(prefix))


class PsutilProcesses:
    """The live process table."""

    def __init__(self) -> None:
        import psutil  # imported here so the host layer loads without it

        self._psutil: Any = psutil
        self.description = f"psutil {psutil.__version__}"

    def _guard(self, func: Any, default: Any = None) -> Any:
        ps = self._psutil
        try:
            return func()
        except (ps.Error, OSError):  # denied, a zombie, or gone since (a restart loop's agent)
            return default

    def get(self, pid: int, *, cpu_interval: float = 0.0) -> Optional[ProcessInfo]:
        ps = self._psutil
        try:
            proc = ps.Process(pid)
            name = proc.name()
        except ps.NoSuchProcess:
            return None
        except (ps.AccessDenied, ps.ZombieProcess, OSError):
            name = ""
        cpu = None
        if cpu_interval > 0:
            self._guard(lambda: proc.cpu_percent(None))
            time.sleep(cpu_interval)
            cpu = self._guard(lambda: proc.cpu_percent(None))
        environ: Optional[Mapping[str, str]] = None
        problem: Optional[str] = None
        try:
            env = proc.environ()
            environ = {k: v for k, v in env.items() if k in PROXY_VARIABLES}
        except ps.AccessDenied:
            problem = "permission denied (run as root to read /proc/PID/environ)"
        except (ps.NoSuchProcess, ps.ZombieProcess, OSError) as exc:
            problem = f"unreadable: {exc}"
        mem = self._guard(lambda: proc.memory_info().rss)
        return ProcessInfo(
            pid=pid,
            name=name,
            exe=self._guard(proc.exe),
            cmdline=tuple(self._guard(proc.cmdline, []) or ()),
            create_time=self._guard(proc.create_time),
            rss=mem,
            cpu_percent=cpu,
            num_threads=self._guard(proc.num_threads),
            environ=environ,
            environ_problem=problem,
            cpu_count=ps.cpu_count() or None,
            total_memory=self._guard(lambda: ps.virtual_memory().total),
        )

    def find(self, name_prefix: str) -> List[int]:
        ps = self._psutil
        pids: List[int] = []
        for proc in ps.process_iter(["name", "exe"]):
            info = proc.info
            if _name_matches(info.get("name") or "", info.get("exe"), name_prefix):
                pids.append(proc.pid)
        return sorted(pids)


def live_processes() -> ProcessTable:
    """The live host's process table."""
    try:
        return PsutilProcesses()
    except ImportError as exc:
        return UnavailableProcesses(f"psutil is not installed ({exc})")
