"""AWS's verified-platform matrix (``knowledge/support_matrix.json``) applied to one host.

Pure functions over the dated table: which row an os-release names, and how a kernel compares
with the kernels verified for that row. The bounds GuardDuty itself applies are UNCONFIRMED
(guardduty.md 6.2, 13); everything here is inferred from the table and says so.

This is the knowledge layer: checks and rules both use it, and it imports no parser. The host's
os-release and kernel version are taken as anything with the fields of
:class:`~gd_doctor.parsers.os_release.OsRelease` and
:class:`~gd_doctor.parsers.kernel_version.KernelVersion` (:class:`OsIdentity`,
:class:`KernelKey`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Protocol, Sequence, Tuple

from gd_doctor.knowledge import load
from gd_doctor.patterns import lazy

Version = Tuple[int, ...]

_MAJOR_MINOR = lazy(r"^\s*(\d{1,3})\.(\d{1,3})")


class OsIdentity(Protocol):
    """The os-release fields the table is matched on (an ``OsRelease`` has them)."""

    @property
    def id(self) -> str: ...
    @property
    def version_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def pretty_name(self) -> str: ...
    @property
    def id_like(self) -> Tuple[str, ...]: ...


class KernelKey(Protocol):
    """A kernel's leading X.Y (a ``KernelVersion`` has it)."""

    @property
    def key(self) -> Tuple[int, int]: ...
    @property
    def major_minor(self) -> str: ...


def version_tuple(text: Optional[str]) -> Optional[Version]:
    """``"1.9.1"`` -> ``(1, 9, 1)``; a leading ``v`` is allowed; None when not numeric.

    >>> version_tuple("v1.16.0"), version_tuple("1.9"), version_tuple("x")
    ((1, 16, 0), (1, 9), None)
    """
    if not text:
        return None
    parts = []
    for piece in text.strip().lstrip("vV").split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts) if parts else None


def _kernel_key(text: str) -> Tuple[int, int]:
    m = _MAJOR_MINOR.match(text)
    if m is None:
        raise ValueError(f"support matrix: bad kernel {text!r}")
    return int(m.group(1)), int(m.group(2))


class Row(NamedTuple):
    """One row of the table."""

    name: str
    ids: Tuple[str, ...]
    versions: Tuple[Tuple[str, Optional[str]], ...]  # (version, agent that added it)
    kernels: Tuple[str, ...]
    name_contains: Optional[str] = None
    major_match: bool = True
    manual_install_only: bool = False

    @property
    def kernel_keys(self) -> List[Tuple[int, int]]:
        return sorted(_kernel_key(k) for k in self.kernels)


class Matrix(NamedTuple):
    """The whole table plus the footnotes gd-doctor applies."""

    date: str
    source: str
    rows: Tuple[Row, ...]
    floor: Tuple[int, int]
    memlock_kernel_max: Tuple[int, int]
    memlock_min_bytes: int
    kernel_agents: Mapping[str, str]
    exceptions: Tuple[Mapping[str, Any], ...]
    unlisted: Tuple[Mapping[str, Any], ...]
    architectures: Tuple[str, ...]
    arch_aliases: Mapping[str, str]
    unsupported_type_prefixes: Tuple[str, ...]

    @property
    def all_kernels(self) -> List[Tuple[int, int]]:
        keys = {k for row in self.rows for k in row.kernel_keys}
        keys.update(_kernel_key(u["version"]) for u in self.unlisted)
        return sorted(keys)

    def row(self, name: Optional[str]) -> Optional[Row]:
        return next((r for r in self.rows if r.name == name), None)


@lru_cache(maxsize=1)
def matrix() -> Matrix:
    """The support matrix shipped with this gd-doctor."""
    raw: Dict[str, Any] = load("support_matrix.json")
    rows = tuple(
        Row(
            name=r["row"],
            ids=tuple(r["ids"]),
            versions=tuple((v["version"], v.get("agent")) for v in r["versions"]),
            kernels=tuple(r["kernels"]),
            name_contains=r.get("name_contains"),
            major_match=bool(r.get("major_match", True)),
            manual_install_only=bool(r.get("manual_install_only", False)),
        )
        for r in raw["distributions"]
    )
    arch = raw["architectures"]
    return Matrix(
        date=str(raw["date"]),
        source=str(raw["source"]),
        rows=rows,
        floor=_kernel_key(raw["kernel_floor"]["version"]),
        memlock_kernel_max=_kernel_key(raw["memlock"]["kernel_max"]),
        memlock_min_bytes=int(raw["memlock"]["min_bytes"]),
        kernel_agents=dict(raw["kernel_agents"]),
        exceptions=tuple(raw["kernel_agent_exceptions"]),
        unlisted=tuple(raw["unlisted_kernels"]),
        architectures=tuple(arch["supported"]),
        arch_aliases=dict(arch.get("aliases", {})),
        unsupported_type_prefixes=tuple(arch["unsupported_instance_type_prefixes"]),
    )


# --- distributions ---------------------------------------------------------------------------


class OsMatch(NamedTuple):
    """Where an os-release lands in the table.

    ``match``: ``exact`` (the version is listed, or the row lists no versions), ``major`` (same
    major release as a listed version, another minor), ``version`` (the distribution is listed,
    this version is not), ``none`` (the distribution is not in the table).
    """

    row: Optional[str]
    match: str
    verified_versions: Tuple[str, ...] = ()
    agent: Optional[str] = None
    manual_install_only: bool = False

    @property
    def supported(self) -> bool:
        return self.match == "exact"


def _rows_for(rel: OsIdentity, rows: Sequence[Row]) -> List[Row]:
    ids = (rel.id, *rel.id_like) if rel.id else rel.id_like
    found = []
    for row in rows:
        if rel.id not in row.ids:
            continue
        if (
            row.name_contains
            and row.name_contains not in (rel.name + " " + rel.pretty_name).lower()
        ):
            continue
        found.append(row)
    if not found and not rel.id:
        found = [r for r in rows if set(r.ids) & set(ids)]
    return found


def _version_matches(host: str, listed: str, major_match: bool) -> str:
    """``exact``, ``major`` or ``""``."""
    if host == listed:
        return "exact"
    host_major = host.split(".")[0]
    if "." not in listed and host_major == listed:
        return "exact"  # the table lists the major release ("Alma Linux 9"): any 9.x
    if major_match and host_major and host_major == listed.split(".")[0]:
        return "major"
    return ""


def match_os(rel: OsIdentity, m: Optional[Matrix] = None) -> OsMatch:
    """The table row and match quality for one os-release."""
    m = m or matrix()
    rows = _rows_for(rel, m.rows)
    if not rows:
        return OsMatch(None, "none")
    best: Optional[OsMatch] = None
    for row in rows:
        listed = tuple(v for v, _ in row.versions)
        if not listed:
            return OsMatch(row.name, "exact", (), None, row.manual_install_only)
        for version, agent in row.versions:
            how = _version_matches(rel.version_id, version, row.major_match)
            if how == "exact":
                return OsMatch(row.name, "exact", listed, agent, row.manual_install_only)
            if how == "major" and best is None:
                best = OsMatch(row.name, "major", listed, agent, row.manual_install_only)
    if best is not None:
        return best
    all_listed = tuple(v for row in rows for v, _ in row.versions)
    return OsMatch(rows[0].name, "version", all_listed, None, rows[0].manual_install_only)


# --- kernels ---------------------------------------------------------------------------------


class KernelJudgement(NamedTuple):
    """How one kernel compares with the table.

    ``verdict``: ``supported``, ``lower``, ``higher`` or ``unverified``. ``scope``: ``all`` when the
    comparison is with every kernel in the table (the likely GuardDuty bound), ``distro`` when
    only with the kernels verified for the host's row.
    """

    verdict: str
    scope: str
    memlock_required: bool
    row_min: Optional[str] = None
    row_max: Optional[str] = None
    table_min: str = ""
    table_max: str = ""
    requires_agent: Optional[str] = None
    notes: Tuple[str, ...] = ()


def _fmt(key: Optional[Tuple[int, int]]) -> Optional[str]:
    return f"{key[0]}.{key[1]}" if key else None


def _required_agent(
    k: str, os_id: str, version_id: str, m: Matrix
) -> Tuple[Optional[str], Tuple[str, ...]]:
    notes: List[str] = []
    for exc in m.exceptions:
        if os_id in exc["ids"] and version_id in exc["versions"] and k in exc["kernels"]:
            notes.append(
                f"kernel {k} on {os_id} {version_id} needs agent {exc['min_agent']} or newer"
            )
            return str(exc["min_agent"]), tuple(notes)
    for u in m.unlisted:
        if u["version"] == k:
            notes.append(str(u.get("note", "")))
    return m.kernel_agents.get(k), tuple(n for n in notes if n)


def judge_kernel(
    kernel: KernelKey,
    row_name: Optional[str],
    os_id: str = "",
    version_id: str = "",
    m: Optional[Matrix] = None,
) -> KernelJudgement:
    """Compare ``kernel`` (on its leading X.Y) with the table."""
    m = m or matrix()
    k = kernel.key
    row = m.row(row_name)
    table = m.all_kernels
    row_keys = row.kernel_keys if row else []
    memlock = k <= m.memlock_kernel_max
    agent, notes = _required_agent(kernel.major_minor, os_id, version_id, m)

    def judged(verdict: str, scope: str) -> KernelJudgement:
        return KernelJudgement(
            verdict,
            scope,
            memlock_required=memlock,
            row_min=_fmt(row_keys[0]) if row_keys else None,
            row_max=_fmt(row_keys[-1]) if row_keys else None,
            table_min=_fmt(m.floor) or "",
            table_max=_fmt(table[-1]) or "",
            requires_agent=agent,
            notes=notes,
        )

    if k < m.floor:
        return judged("lower", "all")
    if row_keys and k < row_keys[0]:
        return judged("lower", "distro")
    if k > table[-1]:
        return judged("higher", "all")
    if row_keys and k > row_keys[-1]:
        return judged("higher", "distro")
    listed = row_keys if row_keys else table
    return judged("supported" if k in listed else "unverified", "distro" if row_keys else "all")
