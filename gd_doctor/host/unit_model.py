"""The values the unit layer returns: the effective unit, its environment files, and the
manager's configuration. Values may hold secrets (proxy credentials): callers redact."""

from __future__ import annotations

from dataclasses import field
from typing import Dict, Mapping, Optional, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.parsers.systemd_conf import LimitSetting, parse_limit
from gd_doctor.parsers.systemd_env import EnvironmentFileSetting
from gd_doctor.parsers.unit_file import parse_size

SYSTEM_CONF = "/etc/systemd/system.conf"


@dataclass(frozen=True)
class EnvironmentFileRead:
    """One file an ``EnvironmentFile=`` names, as the unit would read it when it starts.

    ``problem`` set and ``ignore_errors`` False means systemd refuses to start the unit
    ("Failed to load environment files").
    """

    path: str
    ignore_errors: bool
    pairs: Tuple[Tuple[str, str], ...] = ()
    problem: Optional[str] = None
    pattern: Optional[str] = None  # the glob this path came from


@dataclass(frozen=True)
class EffectiveUnit:
    """What systemd loads for one unit name. ``directives`` maps ``Section.Key`` to the values
    kept after merging (the last one is effective); see the module docstring for the rules."""

    name: str
    load_state: str  # "loaded", "masked", "not-found", "unreadable"
    fragment_path: Optional[str] = None  # the unit file (the mask, when masked)
    masked: bool = False
    aliases: Tuple[str, ...] = ()
    drop_in_paths: Tuple[str, ...] = ()  # in the order applied (as systemctl show lists them)
    masked_drop_ins: Tuple[str, ...] = ()  # of those, /dev/null links or empty files: no effect
    overridden_drop_ins: Tuple[str, ...] = ()  # same name in a higher-precedence directory
    directives: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    directive_sources: Mapping[str, str] = field(default_factory=dict)  # key -> file of last
    environment: Tuple[Tuple[str, str], ...] = ()  # Environment= (what systemctl show prints)
    environment_files: Tuple[EnvironmentFileSetting, ...] = ()
    environment_file_reads: Tuple[EnvironmentFileRead, ...] = ()
    manager_environment: Tuple[Tuple[str, str], ...] = ()  # DefaultEnvironment= of system.conf
    unreadable: Tuple[Tuple[str, str], ...] = ()  # (path, reason)
    errors: Tuple[str, ...] = ()  # lines and assignments systemd would ignore

    @property
    def found(self) -> bool:
        """A unit file exists (possibly masked)."""
        return self.load_state != "not-found"

    def values(self, key: str, section: str = "Service") -> Tuple[str, ...]:
        return self.directives.get(f"{section}.{key}", ())

    def value(self, key: str, section: str = "Service") -> Optional[str]:
        """The effective (last) value of a setting, None when unset or reset."""
        values = self.values(key, section)
        return values[-1] if values else None

    def source_of(self, key: str, section: str = "Service") -> Optional[str]:
        """The file whose assignment of ``key`` is the effective one."""
        return self.directive_sources.get(f"{section}.{key}")

    @property
    def memory_max(self) -> Optional[str]:
        return self.value("MemoryMax")

    @property
    def memory_limit(self) -> Optional[str]:
        return self.value("MemoryLimit")

    @property
    def cpu_quota(self) -> Optional[str]:
        return self.value("CPUQuota")

    @property
    def restart(self) -> Optional[str]:
        return self.value("Restart")

    @property
    def exec_start(self) -> Tuple[str, ...]:
        return self.values("ExecStart")

    @property
    def limit_memlock(self) -> Optional[LimitSetting]:
        value = self.value("LimitMEMLOCK")
        return parse_limit(value) if value else None

    def memory_max_bytes(self, total_memory: Optional[int] = None) -> Optional[int]:
        """MemoryMax= in bytes (percentages need the machine's memory); None when unlimited."""
        return parse_size(self.memory_max, total_memory)

    @property
    def file_environment(self) -> Tuple[Tuple[str, str], ...]:
        """The assignments of all readable environment files, later files winning."""
        merged: Dict[str, str] = {}
        for read in self.environment_file_reads:
            merged.update(read.pairs)
        return tuple(merged.items())

    def process_environment(self) -> Dict[str, str]:
        """The variables systemd hands the service (before the ones it adds itself such as
        INVOCATION_ID): DefaultEnvironment=, then Environment=, then the environment files."""
        env: Dict[str, str] = dict(self.manager_environment)
        env.update(self.environment)
        env.update(self.file_environment)
        return env

    def environment_source(self, name: str) -> Optional[str]:
        """Where the value the service gets for ``name`` comes from (for evidence lines)."""
        for read in reversed(self.environment_file_reads):
            if any(k == name for k, _ in read.pairs):
                return f"EnvironmentFile {read.path}"
        if any(k == name for k, _ in self.environment):
            src = self.source_of("Environment")
            return f"Environment= in {src}" if src else "Environment="
        if any(k == name for k, _ in self.manager_environment):
            return f"DefaultEnvironment= in {SYSTEM_CONF} or system.conf.d"
        return None

    @property
    def unstartable_environment_files(self) -> Tuple[EnvironmentFileRead, ...]:
        """Environment files without ``-`` that cannot be read: systemd will not start it."""
        return tuple(r for r in self.environment_file_reads if r.problem and not r.ignore_errors)


@dataclass(frozen=True)
class ManagerConfig:
    """``/etc/systemd/system.conf`` and its ``system.conf.d`` drop-ins, merged like a unit."""

    files: Tuple[str, ...] = ()  # in the order applied
    directives: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    directive_sources: Mapping[str, str] = field(default_factory=dict)
    default_environment: Tuple[Tuple[str, str], ...] = ()
    unreadable: Tuple[Tuple[str, str], ...] = ()
    errors: Tuple[str, ...] = ()

    def value(self, key: str) -> Optional[str]:
        values = self.directives.get(f"Manager.{key}", ())
        return values[-1] if values else None

    def source_of(self, key: str) -> Optional[str]:
        return self.directive_sources.get(f"Manager.{key}")

    @property
    def default_limit_memlock(self) -> Optional[LimitSetting]:
        value = self.value("DefaultLimitMEMLOCK")
        return parse_limit(value) if value else None
