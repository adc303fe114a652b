"""Classify journal entries about a unit: starts, exits, restarts, OOM kills, clean stops.

Input is any sequence of entries with ``timestamp``, ``message`` and ``fields`` (the journal port's
``JournalEntry``), in time order. systemd's own lines about the unit come from PID 1 with
``UNIT=<unit>``; the service's output carries ``_SYSTEMD_UNIT=<unit>``; kernel lines carry
``_TRANSPORT=kernel``. Messages are matched by MESSAGE_ID where systemd sets one and by text
otherwise, covering the wording of systemd 219 (Amazon Linux 2) to 257.

Typical input (real lines, ``tests/fixtures/journal/restart-loop.json``, systemd 252)::

    amazon-guardduty-agent.service: Main process exited, code=exited, status=1/FAILURE
    amazon-guardduty-agent.service: Failed with result 'exit-code'.
    amazon-guardduty-agent.service: Scheduled restart job, restart counter is at 1.
"""

from __future__ import annotations

import re
from dataclasses import field
from datetime import datetime
from typing import Dict, Iterable, List, Mapping, Optional, Protocol, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.patterns import lazy

# sd-messages.h
MSG_UNIT_STARTED = "39f53479d3a045ac8e11786248231fbf"
MSG_UNIT_STOPPED = "9d1aaa27d60140bd96365438aad20286"
MSG_UNIT_FAILED = "be02cf6855d2428ba40df7e9d022f03d"
MSG_UNIT_PROCESS_EXIT = "98e322203f7a4ed290d09fe03c09fe15"
MSG_UNIT_FAILURE_RESULT = "d9b373ed55a64feb8242e02dbe79a49c"
MSG_UNIT_RESTART_SCHEDULED = "5eb03494b6584870a536b337290809b3"
MSG_UNIT_SUCCESS = "7ad2d189f7e94e70a38c781354912448"
MSG_UNIT_OOMD_KILL = "fe6faa94e7774663a0da52717891d8ef"

_EXITED = lazy(
    r"[Mm]ain process exited, code=(?P<code>\w+), status=(?P<status>\d+)(?:/(?P<name>\w+))?"
)
_FAILED_RESULT = lazy(r"Failed with result '(?P<result>[\w-]+)'")
_RESTART = lazy(r"restart counter is at (?P<n>\d+)|holdoff time over, scheduling restart")
_STARTED = lazy(r"^Started\b")
_CLEAN_STOP = lazy(r"Deactivated successfully|^Stopped\b|Succeeded\.")
_START_LIMIT = lazy(r"Start request repeated too quickly")
_SYSTEMD_OOM = lazy(r"killed by the OOM killer|Failed with result 'oom-kill'")
# Kernel: "Memory cgroup out of memory: Killed process 2540 (amazon-guardduty) ..." (5.x+),
# "Memory cgroup out of memory: Kill process 2540 (...)" (4.x), and the cgroup-v2 summary line
# "oom-kill:constraint=CONSTRAINT_MEMCG,...,task=amazon-guarddut,pid=2540,uid=0".
_KERNEL_OOM = lazy(
    r"(?:out of memory: Kill(?:ed)? process \d+ \((?P<comm>[^)]*)\))"
    r"|(?:oom-kill:.*task=(?P<task>[^,]+))"
)

# Every kernel OOM kill line holds this text: readers of a whole ring buffer test it first.
OOM_KILL_MARK = "out of memory: Kill"
_KILLED_PROCESS = lazy(re.escape(OOM_KILL_MARK) + r"(?:ed)? process \d+")


class EntryLike(Protocol):
    @property
    def timestamp(self) -> datetime: ...

    @property
    def message(self) -> str: ...

    @property
    def fields(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Exit:
    """One end of the main process: ``code`` is exited/killed/dumped, ``status`` the exit code or
    signal number, ``name`` systemd's label (FAILURE, KILL, SEGV ...)."""

    at: str
    code: str
    status: int
    name: str = ""

    @property
    def clean(self) -> bool:
        return self.code == "exited" and self.status == 0


@dataclass
class UnitHistory:
    """What the journal says happened to the unit in the window."""

    starts: List[str] = field(default_factory=list)  # ISO timestamps
    exits: List[Exit] = field(default_factory=list)
    failure_results: List[str] = field(default_factory=list)  # 'exit-code', 'signal', ...
    restarts_scheduled: int = 0
    max_restart_counter: Optional[int] = None
    oom_kills: List[Tuple[str, str]] = field(default_factory=list)  # kernel "Killed process"
    systemd_oom: List[Tuple[str, str]] = field(default_factory=list)  # "Failed ... 'oom-kill'"
    start_limit_hit: bool = False
    last_clean_run: Optional[str] = None  # end (or start, if still up) of the last good run
    agent_lines: List[Tuple[Optional[datetime], str]] = field(default_factory=list)
    evidence: List[str] = field(default_factory=list)

    def failed_exits(self) -> List[Exit]:
        return [e for e in self.exits if not e.clean]

    def oom_count(self) -> int:
        """OOM kills: the kernel and systemd each report one kill, so take the larger count."""
        return max(len(self.oom_kills), len(self.systemd_oom))

    def restart_interval_s(self) -> Optional[float]:
        """Mean seconds between starts, when there were at least two."""
        if len(self.starts) < 2:
            return None
        first = datetime.fromisoformat(self.starts[0])
        last = datetime.fromisoformat(self.starts[-1])
        return round((last - first).total_seconds() / (len(self.starts) - 1), 1)

    def as_data(self) -> Dict[str, object]:
        exits = self.failed_exits()
        return {
            "starts": len(self.starts),
            "failed_exits": len(exits),
            "exit_codes": sorted({e.status for e in exits if e.code == "exited"}),
            "signals": sorted({e.name or str(e.status) for e in exits if e.code != "exited"}),
            "failure_results": sorted(set(self.failure_results)),
            "restarts_scheduled": self.restarts_scheduled,
            "max_restart_counter": self.max_restart_counter,
            "restart_interval_s": self.restart_interval_s(),
            "oom_kills": self.oom_count(),
            "start_limit_hit": self.start_limit_hit,
            "last_clean_run": self.last_clean_run,
            "last_start": self.starts[-1] if self.starts else None,
            # when the main process died of SIGKILL: a kernel OOM kill at the same moment was
            # this unit's process (agent.kernel_log pairs them)
            "sigkill_exits": [e.at for e in exits if e.code == "killed" and e.status == 9][-50:],
        }


def _is_about_unit(fields: Mapping[str, str], unit: str) -> bool:
    return fields.get("UNIT") == unit or fields.get("OBJECT_SYSTEMD_UNIT") == unit


def _kernel_oom_of(message: str, comm_prefix: str) -> bool:
    m = _KERNEL_OOM.search(message)
    if not m:
        return False
    name = (m.group("comm") or m.group("task") or "").strip()
    return bool(name) and (comm_prefix.startswith(name) or name.startswith(comm_prefix))


def kernel_oom_kill(message: str, comm_prefix: str) -> bool:
    """A kernel "Killed process" line of a cgroup (or global) OOM kill of ``comm_prefix``.

    The ``oom-kill:`` summary line is its twin and is not counted.

    >>> kernel_oom_kill("Memory cgroup out of memory: Killed process 14499 (amazon-guarddut) "
    ...                 "total-vm:174204kB", "amazon-guarddut")
    True
    >>> kernel_oom_kill("oom-kill:constraint=CONSTRAINT_MEMCG,task=amazon-guarddut,pid=1",
    ...                 "amazon-guarddut")
    False
    """
    return _kernel_oom_of(message, comm_prefix) and bool(_KILLED_PROCESS.search(message))


def summarise_unit(entries: Iterable[EntryLike], unit: str, comm: str = "") -> UnitHistory:
    """Walk the entries once, in time order, and count what happened to ``unit``.

    ``comm`` is the agent's process name prefix for kernel OOM lines (the unit name cut to 15
    characters by default, as the kernel cuts ``comm``).

    >>> from types import SimpleNamespace as E
    >>> from datetime import timezone
    >>> t = datetime(2026, 11, 30, 13, 22, tzinfo=timezone.utc)
    >>> u = "amazon-guardduty-agent.service"
    >>> h = summarise_unit([
    ...   E(timestamp=t, message="Started amazon-guardduty-agent.service - Agent.",
    ...     fields={"UNIT": u}),
    ...   E(timestamp=t, message=u + ": Main process exited, code=exited, status=1/FAILURE",
    ...     fields={"UNIT": u}),
    ...   E(timestamp=t, message=u + ": Failed with result 'exit-code'.", fields={"UNIT": u}),
    ...   E(timestamp=t, message=u + ": Scheduled restart job, restart counter is at 1.",
    ...     fields={"UNIT": u})], u)
    >>> len(h.starts), h.failed_exits()[0].status, h.failure_results, h.restarts_scheduled
    (1, 1, ['exit-code'], 1)
    """
    comm = comm or unit.replace(".service", "")[:15]
    hist = UnitHistory()
    running_since: Optional[str] = None
    run_failed = False
    for entry in entries:
        msg, fields = entry.message, entry.fields
        iso = entry.timestamp.isoformat()
        if fields.get("_TRANSPORT") == "kernel":
            if _kernel_oom_of(msg, comm):
                if _KILLED_PROCESS.search(msg):  # count these; the oom-kill: line is a twin
                    hist.oom_kills.append((iso, msg))
                hist.evidence.append(f"{iso} kernel: {msg}")
            continue
        if not _is_about_unit(fields, unit):
            if fields.get("_SYSTEMD_UNIT") == unit:
                hist.agent_lines.append((entry.timestamp, msg))
            continue
        mid = fields.get("MESSAGE_ID", "")
        if mid == MSG_UNIT_STARTED or (not mid and _STARTED.search(msg)):
            hist.starts.append(iso)
            running_since, run_failed = iso, False
            continue
        m = _EXITED.search(msg)
        if m:
            ex = Exit(iso, m.group("code"), int(m.group("status")), m.group("name") or "")
            hist.exits.append(ex)
            if not ex.clean:
                run_failed = True
                hist.evidence.append(f"{iso} {msg}")
            continue
        m = _FAILED_RESULT.search(msg)
        if m:
            hist.failure_results.append(m.group("result"))
            run_failed = True
            if m.group("result") == "oom-kill":
                hist.systemd_oom.append((iso, msg))
            hist.evidence.append(f"{iso} {msg}")
            continue
        if mid == MSG_UNIT_OOMD_KILL or _SYSTEMD_OOM.search(msg):
            hist.evidence.append(f"{iso} {msg}")
            continue
        m = _RESTART.search(msg)
        if m:
            hist.restarts_scheduled += 1
            if m.group("n"):
                n = int(m.group("n"))
                hist.max_restart_counter = max(n, hist.max_restart_counter or 0)
            continue
        if _START_LIMIT.search(msg):
            hist.start_limit_hit = True
            hist.evidence.append(f"{iso} {msg}")
            continue
        if "entered failed state" in msg or mid == MSG_UNIT_FAILED:
            run_failed = True
            continue
        if _CLEAN_STOP.search(msg) and running_since is not None:
            if not run_failed:
                hist.last_clean_run = iso
            running_since = None
    if running_since is not None and not run_failed:
        hist.last_clean_run = running_since
    return hist
