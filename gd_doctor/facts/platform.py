"""Facts of the platform domain: one type per ``platform.*`` check.

Each type is built from the parsers' values (``OsRelease``, ``KernelVersion``, ``CpuInfo``,
``LimitSetting``, ``Ec2Evidence``) and the support-matrix judgements (``OsMatch``,
``KernelJudgement``) by a ``from_...()`` constructor; "could not be read" is a value of its own
(``supported=None``, ``btf=None``, ``is_ec2=None``...), never a missing key.

Field names are the report's ``data`` keys; ``report/build.py`` reads ``OsFacts.pretty_name``,
``OsFacts.hostname``, ``KernelFacts.release``, ``ArchFacts.machine`` and ``Ec2Facts.is_ec2``.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.knowledge.support import KernelJudgement, OsMatch
from gd_doctor.model import Facts
from gd_doctor.parsers.cpuinfo import CpuInfo
from gd_doctor.parsers.dmi import Ec2Evidence
from gd_doctor.parsers.kernel_version import KernelVersion
from gd_doctor.parsers.os_release import OsRelease
from gd_doctor.parsers.systemd_conf import LimitSetting

MIB = 1024 * 1024


@dataclass(frozen=True)
class OsFacts(Facts):
    """platform.os: the distribution and where it lands in AWS's verified matrix.

    ``match`` is ``exact``, ``major``, ``version``, ``none`` (see ``OsMatch``) or ``unknown``
    (no os-release could be read; ``problems`` says why, ``supported`` is None).
    """

    id: Optional[str]
    version_id: Optional[str]
    pretty_name: Optional[str]
    name: Optional[str]
    id_like: Tuple[str, ...]
    hostname: Optional[str]
    matrix_row: Optional[str]
    supported: Optional[bool]
    match: str
    verified_versions: Tuple[str, ...]
    agent_added: Optional[str]
    manual_install_only: bool
    matrix_date: str
    source: Optional[str]
    problems: Tuple[str, ...] = ()

    @classmethod
    def from_release(
        cls,
        rel: OsRelease,
        found: OsMatch,
        *,
        source: str,
        hostname: Optional[str],
        matrix_date: str,
        problems: Tuple[str, ...] = (),
    ) -> OsFacts:
        return cls(
            id=rel.id or None,
            version_id=rel.version_id or None,
            pretty_name=rel.pretty_name or f"{rel.name or rel.id} {rel.version_id}".strip(),
            name=rel.name or None,
            id_like=tuple(rel.id_like),
            hostname=hostname,
            matrix_row=found.row,
            supported=found.supported,
            match=found.match,
            verified_versions=tuple(found.verified_versions),
            agent_added=found.agent,
            manual_install_only=found.manual_install_only,
            matrix_date=matrix_date,
            source=source,
            problems=problems,
        )

    @classmethod
    def unknown(
        cls, *, hostname: Optional[str], matrix_date: str, problems: Tuple[str, ...]
    ) -> OsFacts:
        """No os-release (or system-release) named a distribution."""
        return cls(
            id=None,
            version_id=None,
            pretty_name=None,
            name=None,
            id_like=(),
            hostname=hostname,
            matrix_row=None,
            supported=None,
            match="unknown",
            verified_versions=(),
            agent_added=None,
            manual_install_only=False,
            matrix_date=matrix_date,
            source=None,
            problems=problems,
        )


@dataclass(frozen=True)
class KernelFacts(Facts):
    """platform.kernel: the running kernel and how it compares with the matrix.

    ``verdict`` is ``supported``, ``lower``, ``higher``, ``unverified`` or ``unknown`` (release
    not readable or not X.Y; then ``major_minor`` and ``memlock_required`` are None).
    """

    release: Optional[str]
    major_minor: Optional[str]
    verdict: str
    scope: Optional[str]
    memlock_required: Optional[bool]
    matrix_row: Optional[str]
    row_min: Optional[str]
    row_max: Optional[str]
    table_min: Optional[str]
    table_max: Optional[str]
    requires_agent: Optional[str]
    notes: Tuple[str, ...]
    source: Optional[str]

    @classmethod
    def from_judgement(
        cls,
        kernel: KernelVersion,
        j: KernelJudgement,
        *,
        matrix_row: Optional[str],
        source: str,
    ) -> KernelFacts:
        return cls(
            release=kernel.release,
            major_minor=kernel.major_minor,
            verdict=j.verdict,
            scope=j.scope,
            memlock_required=j.memlock_required,
            matrix_row=matrix_row,
            row_min=j.row_min,
            row_max=j.row_max,
            table_min=j.table_min,
            table_max=j.table_max,
            requires_agent=j.requires_agent,
            notes=tuple(j.notes),
            source=source,
        )

    @classmethod
    def unknown(cls, release: Optional[str], source: Optional[str]) -> KernelFacts:
        """The release could not be read, or does not start with X.Y."""
        return cls(
            release=release,
            major_minor=None,
            verdict="unknown",
            scope=None,
            memlock_required=None,
            matrix_row=None,
            row_min=None,
            row_max=None,
            table_min=None,
            table_max=None,
            requires_agent=None,
            notes=(),
            source=source,
        )


@dataclass(frozen=True)
class ArchFacts(Facts):
    """platform.arch: the machine name, and the Arm core when /proc/cpuinfo shows one.

    ``machine`` and ``supported`` are None when no source names the architecture;
    ``first_generation_graviton`` is None when /proc/cpuinfo shows no CPU part.
    """

    machine: Optional[str]
    source: Optional[str]
    supported: Optional[bool]
    cpu_part: Optional[str]
    graviton: Optional[str]
    first_generation_graviton: Optional[bool]

    @classmethod
    def from_machine(
        cls, machine: str, *, source: str, cpu: CpuInfo, supported_names: Tuple[str, ...]
    ) -> ArchFacts:
        """``machine`` already normalised by the matrix's aliases (arm64 -> aarch64)."""
        first_gen = cpu.is_first_generation_graviton if cpu.part else None
        return cls(
            machine=machine,
            source=source,
            supported=machine in supported_names and not (machine == "aarch64" and first_gen),
            cpu_part=cpu.part,
            graviton=cpu.graviton,
            first_generation_graviton=first_gen,
        )

    @classmethod
    def unknown(cls) -> ArchFacts:
        return cls(None, None, None, None, None, None)


@dataclass(frozen=True)
class BtfFacts(Facts):
    """platform.btf: whether the kernel has BTF (None: neither sysfs nor a config tells)."""

    btf: Optional[bool]
    source: Optional[str]
    config_value: Optional[str] = None  # CONFIG_DEBUG_INFO_BTF when judged from the config
    problems: Tuple[str, ...] = ()

    @classmethod
    def from_sysfs(cls, present: bool) -> BtfFacts:
        """/sys/kernel/btf/vmlinux exists exactly when the running kernel has BTF."""
        return cls(btf=present, source="/sys/kernel/btf/vmlinux")

    @classmethod
    def from_config(cls, config: Mapping[str, str], source: str) -> BtfFacts:
        value = config.get("CONFIG_DEBUG_INFO_BTF", "absent")
        return cls(btf=value == "y", source=source, config_value=value)


@dataclass(frozen=True)
class KernelFeaturesFacts(Facts):
    """platform.kernel_features: the kernel config options the agent's probes need.

    ``options`` maps each option named to ``y``, ``m``, ``n`` or ``absent``; ``missing`` is None
    when no kernel config was found (``problems`` says where gd-doctor looked).
    """

    options: Mapping[str, str]
    missing: Optional[Tuple[str, ...]]
    source: Optional[str]
    problems: Tuple[str, ...] = ()

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, str],
        source: str,
        *,
        required: Tuple[Tuple[str, str], ...],
        related: Tuple[str, ...],
    ) -> KernelFeaturesFacts:
        """``required`` pairs an option with the feature it provides (CONFIG_KPROBES, kprobes)."""
        options: Dict[str, str] = {name: config.get(name, "absent") for name, _ in required}
        options.update({name: config.get(name, "absent") for name in related})
        missing = tuple(f"{feature} ({name})" for name, feature in required if options[name] != "y")
        return cls(options=options, missing=missing, source=source)

    @classmethod
    def unknown(cls, problems: Tuple[str, ...]) -> KernelFeaturesFacts:
        return cls(options={}, missing=None, source=None, problems=problems)


def format_limit(limit: LimitSetting) -> str:
    """``soft:hard`` the way systemd writes it (``32M:32M``, ``64K:64K``, ``infinity``)."""

    def one(v: Optional[int]) -> str:
        if v is None:
            return "infinity"
        if v % MIB == 0 and v >= MIB:
            return f"{v // MIB}M"
        if v % 1024 == 0:
            return f"{v // 1024}K"
        return str(v)

    return f"{one(limit.soft)}:{one(limit.hard)}"


@dataclass(frozen=True)
class MemlockFacts(Facts):
    """platform.memlock: the RLIMIT_MEMLOCK systemd gives the agent, from its configuration.

    ``required`` is None when the kernel is unknown; ``effective`` is None when nothing sets the
    limit (systemd's built-in default applies: ``effective_source`` says which).
    """

    required: Optional[bool]
    effective: Optional[str]
    effective_source: str
    sufficient: bool
    default_limit_memlock: Optional[str]
    default_limit_memlock_file: Optional[str]
    dropins_present: Tuple[str, ...]
    unit_limit_memlock: Optional[str]
    minimum_bytes: int
    kernel: Optional[str]  # the kernel's X.Y the requirement was judged for
    problems: Tuple[str, ...] = ()

    @classmethod
    def from_limit(
        cls,
        effective: Optional[LimitSetting],
        *,
        source: str,
        required: Optional[bool],
        kernel: Optional[str],
        minimum_bytes: int,
        default_value: Optional[str],
        default_file: Optional[str],
        dropins: Tuple[str, ...],
        unit_value: Optional[str],
        problems: Tuple[str, ...] = (),
    ) -> MemlockFacts:
        return cls(
            required=required,
            effective=format_limit(effective) if effective else None,
            effective_source=source,
            sufficient=effective.at_least(minimum_bytes) if effective else False,
            default_limit_memlock=default_value,
            default_limit_memlock_file=default_file,
            dropins_present=dropins,
            unit_limit_memlock=unit_value,
            minimum_bytes=minimum_bytes,
            kernel=kernel,
            problems=problems,
        )


@dataclass(frozen=True)
class InitFacts(Facts):
    """platform.init: what PID 1 is. ``init`` is None when it cannot be told."""

    init: Optional[str]
    pid1: Optional[str]

    @classmethod
    def from_pid1(cls, comm: Optional[str], *, booted: bool) -> InitFacts:
        """From /proc/1/comm and whether /run/systemd/system exists (sd_booted(3))."""
        if comm == "systemd" or booted:
            return cls(init="systemd", pid1=comm)
        return cls(init=comm, pid1=comm)

    @property
    def not_systemd(self) -> bool:
        """PID 1 was seen and is something else than systemd."""
        return self.pid1 is not None and self.init != "systemd"

    @classmethod
    def installed_only(cls) -> InitFacts:
        """A root where systemd is installed but PID 1 cannot be seen."""
        return cls(init="systemd (installed)", pid1=None)


@dataclass(frozen=True)
class ContainerFacts(Facts):
    """platform.container: whether gd-doctor runs inside a container, and the markers seen."""

    in_container: bool
    signals: Tuple[str, ...]

    @classmethod
    def from_signals(cls, signals: Tuple[str, ...]) -> ContainerFacts:
        return cls(in_container=bool(signals), signals=signals)


@dataclass(frozen=True)
class Ec2Facts(Facts):
    """platform.ec2: whether DMI, the hypervisor and SSM say this is EC2 (None: cannot tell)."""

    is_ec2: Optional[bool]
    evidence_for: Tuple[str, ...]
    evidence_against: Tuple[str, ...]
    sources: Mapping[str, str]
    hybrid_id: Optional[str]
    instance_id: Optional[str]

    @classmethod
    def from_dmi(
        cls, judged: Ec2Evidence, values: Mapping[str, Optional[str]], hybrid_id: Optional[str]
    ) -> Ec2Facts:
        """``values``: DMI and hypervisor file name -> content; ``hybrid_id``: an SSM hybrid
        activation id (mi-...), which says "not EC2" unless DMI says EC2."""
        against = judged.against_ec2
        is_ec2 = judged.is_ec2
        if hybrid_id and not judged.for_ec2:
            against = (*against, f"SSM is registered as hybrid node {hybrid_id}")
            is_ec2 = False
        tag = values.get("board_asset_tag") or ""
        return cls(
            is_ec2=is_ec2,
            evidence_for=judged.for_ec2,
            evidence_against=against,
            # product_uuid identifies the machine and says nothing DMI's vendor does not.
            sources={k: v for k, v in values.items() if v and k != "product_uuid"},
            hybrid_id=hybrid_id,
            instance_id=tag if judged.is_ec2 and tag.startswith("i-") else None,
        )
