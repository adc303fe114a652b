"""Parse ``systemctl show UNIT -p PROPS`` output into a typed :class:`UnitState`.

Typical input (captured from systemd 252, ``tests/fixtures/systemctl/252/``)::

    MainPID=0
    Result=exit-code
    NRestarts=2
    ActiveState=activating
    SubState=auto-restart
    MemoryMax=134217728

Differences between systemd versions this parser absorbs: systemd 219 (Amazon Linux 2) has no
``MemoryMax``/``NRestarts`` and prints "infinity" limits as ``18446744073709551615``; newer
versions print ``infinity`` and ``[not set]``; ``-p`` omits empty values before systemd 231 unless
``--all`` is given. Missing keys are ``None``, never an error.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import field
from datetime import datetime, timezone
from typing import Dict, Mapping, Optional, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.parsers.numbers import scaled

# Properties gd-doctor asks for, in the order of the issue text.
PROPERTIES: Tuple[str, ...] = (
    "LoadState", "ActiveState", "SubState", "UnitFileState", "Result", "ExecMainStatus",
    "ExecMainCode", "NRestarts", "ActiveEnterTimestamp", "MainPID", "MemoryMax", "MemoryLimit",
    "MemoryCurrent", "CPUQuotaPerSecUSec", "FragmentPath", "DropInPaths", "Environment",
    "EnvironmentFiles",
)  # fmt: skip

# siginfo si_code values systemd stores in ExecMainCode (CLD_* from <signal.h>).
EXEC_MAIN_CODES: Mapping[int, str] = {1: "exited", 2: "killed", 3: "dumped"}

_UNSET = frozenset({"", "[not set]", "[no data]", "infinity"})
_U64_MAX_ISH = 2**63  # systemd 219 prints (uint64_t) -1 for "no limit"


@dataclass(frozen=True)
class UnitState:
    """The unit's state as systemd reports it; ``None`` where systemd did not say."""

    props: Mapping[str, str] = field(default_factory=dict)
    load_state: Optional[str] = None
    active_state: Optional[str] = None
    sub_state: Optional[str] = None
    unit_file_state: Optional[str] = None
    result: Optional[str] = None
    exec_main_status: Optional[int] = None
    exec_main_code: Optional[str] = None  # "exited" | "killed" | "dumped"
    n_restarts: Optional[int] = None
    active_enter: Optional[str] = None  # ISO 8601 when the timestamp is in UTC, else as printed
    main_pid: Optional[int] = None
    memory_max: Optional[int] = None  # bytes; None = no limit
    memory_limit: Optional[int] = None
    memory_current: Optional[int] = None
    cpu_quota_per_sec_usec: Optional[int] = None  # None = no quota
    fragment_path: Optional[str] = None
    drop_in_paths: Tuple[str, ...] = ()
    environment: Tuple[Tuple[str, str], ...] = ()
    environment_files: Tuple[str, ...] = ()

    @property
    def memory_cap(self) -> Optional[int]:
        """The effective memory cap: the smaller of MemoryMax (cgroup v2) and MemoryLimit (v1)."""
        caps = [c for c in (self.memory_max, self.memory_limit) if c is not None]
        return min(caps) if caps else None


def parse_properties(text: str) -> Dict[str, str]:
    """``KEY=value`` lines into a dict; other lines (warnings, garbage) are ignored.

    >>> parse_properties("LoadState=loaded\\nbogus line\\nEnvironment=A=1 B=2\\n")
    {'LoadState': 'loaded', 'Environment': 'A=1 B=2'}
    """
    props: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key):
            props[key] = value.strip()
    return props


def parse_bytes(value: Optional[str]) -> Optional[int]:
    """A byte count as systemctl prints it; ``None`` for unset or unlimited.

    >>> parse_bytes("134217728"), parse_bytes("infinity"), parse_bytes("18446744073709551615")
    (134217728, None, None)
    """
    if value is None or value in _UNSET:
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    return None if n >= _U64_MAX_ISH or n < 0 else n


_USEC_UNITS = {"us": 1, "ms": 1000, "s": 1_000_000, "min": 60_000_000}


def parse_usec(value: Optional[str]) -> Optional[int]:
    """A time span such as ``200ms``, ``1s``, ``1min 30s`` or ``infinity``, in microseconds.

    >>> parse_usec("200ms"), parse_usec("1min 30s"), parse_usec("infinity")
    (200000, 90000000, None)
    """
    if value is None or value in _UNSET:
        return None
    total = 0
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(us|ms|min|s)\b", value)
    if not parts:
        return scaled(value) if value.isdigit() else None
    for number, unit in parts:
        part = scaled(number, _USEC_UNITS[unit])
        if part is None:
            return None
        total += part
    return total


def parse_timestamp(value: Optional[str]) -> Optional[str]:
    """``Mon 2026-11-30 13:21:55 UTC`` to ISO 8601; other zones are kept as printed.

    >>> parse_timestamp("Mon 2026-11-30 13:21:55 UTC")
    '2026-11-30T13:21:55+00:00'
    >>> parse_timestamp("") is None
    True
    """
    if not value or value in _UNSET or value == "n/a":
        return None
    m = re.fullmatch(r"(?:\w{3} )?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (UTC|GMT)", value)
    if not m:
        return value
    at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    return at.isoformat()


def _int(value: Optional[str]) -> Optional[int]:
    try:
        return int(value) if value not in (None, "") else None  # type: ignore[arg-type]
    except ValueError:
        return None


def parse_environment(value: Optional[str]) -> Tuple[Tuple[str, str], ...]:
    """``Environment=`` as printed: ``A=1 B="two words"`` into ordered (name, value) pairs.

    >>> parse_environment('HTTPS_PROXY=http://proxy:3128 NO_PROXY=localhost')
    (('HTTPS_PROXY', 'http://proxy:3128'), ('NO_PROXY', 'localhost'))
    """
    if not value:
        return ()
    try:
        words = shlex.split(value)
    except ValueError:  # unbalanced quotes: fall back to plain words
        words = value.split()
    pairs = []
    for word in words:
        name, sep, val = word.partition("=")
        if sep and name:
            pairs.append((name, val))
    return tuple(pairs)


def parse_environment_files(value: Optional[str]) -> Tuple[str, ...]:
    """``EnvironmentFiles=/etc/default/x (ignore_errors=yes)`` into paths.

    >>> parse_environment_files("/etc/default/amazon-guardduty-agent (ignore_errors=yes)")
    ('/etc/default/amazon-guardduty-agent',)
    """
    if not value:
        return ()
    return tuple(re.findall(r"(/[^\s()]+)(?:\s+\(ignore_errors=\w+\))?", value))


def parse_systemctl_show(text: str) -> UnitState:
    """The whole ``systemctl show`` output into a :class:`UnitState`.

    >>> s = parse_systemctl_show(
    ...     "MainPID=0\\nResult=exit-code\\nNRestarts=2\\nExecMainCode=1\\nExecMainStatus=1\\n"
    ...     "MemoryCurrent=[not set]\\nCPUQuotaPerSecUSec=infinity\\nMemoryMax=134217728\\n"
    ...     "MemoryLimit=134217728\\nEnvironment=\\nLoadState=loaded\\nActiveState=activating\\n"
    ...     "SubState=auto-restart\\n"
    ...     "FragmentPath=/lib/systemd/system/amazon-guardduty-agent.service\\n"
    ...     "DropInPaths=\\nUnitFileState=enabled\\n"
    ...     "ActiveEnterTimestamp=Mon 2026-11-30 13:21:55 UTC\\n")
    >>> s.active_state, s.sub_state, s.result, s.n_restarts, s.exec_main_code, s.memory_cap
    ('activating', 'auto-restart', 'exit-code', 2, 'exited', 134217728)
    """
    p = parse_properties(text)
    code = _int(p.get("ExecMainCode"))
    pid = _int(p.get("MainPID"))
    return UnitState(
        props=p,
        load_state=p.get("LoadState") or None,
        active_state=p.get("ActiveState") or None,
        sub_state=p.get("SubState") or None,
        unit_file_state=p.get("UnitFileState") or None,
        result=p.get("Result") or None,
        exec_main_status=_int(p.get("ExecMainStatus")),
        exec_main_code=EXEC_MAIN_CODES.get(code) if code else None,
        n_restarts=_int(p.get("NRestarts")),
        active_enter=parse_timestamp(p.get("ActiveEnterTimestamp")),
        main_pid=pid if pid else None,
        memory_max=parse_bytes(p.get("MemoryMax")),
        memory_limit=parse_bytes(p.get("MemoryLimit")),
        memory_current=parse_bytes(p.get("MemoryCurrent")),
        cpu_quota_per_sec_usec=parse_usec(p.get("CPUQuotaPerSecUSec")),
        fragment_path=p.get("FragmentPath") or None,
        drop_in_paths=tuple(p.get("DropInPaths", "").split()),
        environment=parse_environment(p.get("Environment")),
        environment_files=parse_environment_files(p.get("EnvironmentFiles")),
    )
