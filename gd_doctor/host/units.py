"""The effective systemd unit: which file systemd loads for a unit name, which drop-ins it
applies, and the settings and environment that result. Works the same on the live host and under
``--root``: everything is read through :class:`RootFS`, so the root's confinement applies.

What systemd 252 does, and this module follows (systemd.unit(5), src/shared/dropin.c,
src/basic/conf-files.c, src/core/load-fragment.c, src/core/execute.c):

* Unit search path, highest precedence first: ``/etc/systemd/system.control``,
  ``/run/systemd/system.control``, ``/run/systemd/transient``, ``/run/systemd/generator.early``,
  ``/etc/systemd/system``, ``/etc/systemd/system.attached``, ``/run/systemd/system``,
  ``/run/systemd/system.attached``, ``/run/systemd/generator``, ``/usr/local/lib/systemd/system``,
  ``/usr/lib/systemd/system``, ``/lib/systemd/system``, ``/run/systemd/generator.late``. A
  directory that is the same as an earlier one (``/lib`` -> ``usr/lib`` on merged-/usr systems)
  counts once.
* The fragment is the unit file in the first directory that has one. An entry that is a link to
  ``/dev/null`` or an empty file masks the unit: systemd loads nothing (LoadState=masked). A link
  to a file of another name makes the unit an alias of that name. An instance
  (``name@x.service``) without a file of its own uses its template (``name@.service``).
* Drop-in directories, in this order: for each name of the unit (the name, then its aliases),
  for each search directory: ``<name>.d/``, the template's ``.d/``, then the dash prefixes
  (``amazon-guardduty-.service.d/``, ``amazon-.service.d/``); last the type-level
  ``service.d/`` of each search directory (systemd 247+). Of same-named ``*.conf`` files the
  one in the earlier directory wins, and a link to ``/dev/null`` or an empty file there hides
  the others; all files are applied in the lexical order of their names.
* Settings: later assignments win, an empty assignment resets (lists and single values alike);
  ``Environment=`` is split, unquoted and unescaped as systemd does, ``%`` specifiers are
  expanded; ``EnvironmentFile=`` paths must be absolute, ``-`` makes an unreadable file
  harmless, a glob in the last path component is expanded (execute.c globs every path); the
  files' assignments override ``Environment=``, and ``DefaultEnvironment=`` of
  ``/etc/systemd/system.conf`` (and its ``system.conf.d`` drop-ins) is under both.

Not resolved: generators are not run (only what they left in ``/run``), ``PassEnvironment=``
and ``UnsetEnvironment=`` are not applied, machine-dependent specifiers (``%H``, ``%m``, ``%b``)
stay as written, globs in directory components are not expanded (reported as unread), user
units are not searched. Values may hold secrets (proxy credentials): callers redact.
"""

from __future__ import annotations

import os
import stat as stat_mod
import threading
from dataclasses import dataclass, field, replace
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple

from gd_doctor.host.fs import FileRead, RootFS
from gd_doctor.parsers.systemd_conf import LimitSetting, parse_limit
from gd_doctor.parsers.unit_file import (
    EnvironmentFileSetting,
    UnitFile,
    collect_settings,
    environment_files_from_settings,
    environment_from_settings,
    parse_environment_file,
    parse_size,
    parse_unit_file,
)

#: The system manager's unit search path, highest precedence first (systemd 252,
#: lookup_paths_init() for the system scope; /lib is searched on split-/usr builds).
SYSTEM_UNIT_PATH: Tuple[str, ...] = (
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/generator.late",
)
#: The same on a split-/usr build (Debian 12 and older, Ubuntu 22.04 and older): the root
#: prefix's /lib/systemd/system comes before /usr/lib/systemd/system.
SPLIT_USR_UNIT_PATH: Tuple[str, ...] = (
    *SYSTEM_UNIT_PATH[:10],
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
)
#: The manager's own configuration and its drop-in directories, highest precedence first.
SYSTEM_CONF = "/etc/systemd/system.conf"
SYSTEM_CONF_DIRS: Tuple[str, ...] = (
    "/etc/systemd/system.conf.d",
    "/run/systemd/system.conf.d",
    "/usr/local/lib/systemd/system.conf.d",
    "/usr/lib/systemd/system.conf.d",
    "/lib/systemd/system.conf.d",
)

MAX_UNIT_BYTES = 256 * 1024
MAX_ENV_FILE_BYTES = 256 * 1024
MAX_DROP_INS = 200
MAX_ENV_FILES = 64
MAX_ALIAS_HOPS = 8
MAX_DIR_ENTRIES = 5000
_GLOB_CHARS = frozenset("*?[")


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


@dataclass(frozen=True)
class _Entry:
    """One directory entry as systemd sees it: null (a mask), a file, or a link elsewhere."""

    path: str
    null: bool
    target: Optional[str] = None  # the resolved path a symlink points to


def _join(base_dir: str, target: str) -> str:
    """A link target as a normalised path of the root (``..`` never climbs above ``/``)."""
    raw = target if target.startswith("/") else f"{base_dir}/{target}"
    parts: List[str] = []
    for part in raw.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def real_path(fs: RootFS, path: str) -> str:
    """``path`` with every symlink resolved as the root sees it (absolute targets start at the
    root, ``..`` stops there); resolution ends at the first component that is no link."""
    done: List[str] = []
    todo = [p for p in path.split("/") if p not in ("", ".")]
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        link = fs.readlink("/" + "/".join([*done, part]))
        if link is None or hops >= 40:
            done.append(part)
            continue
        hops += 1
        if link.startswith("/"):
            done = []
        todo = [p for p in link.split("/") if p not in ("", ".")] + todo
    return "/" + "/".join(done)


class ConfinedFS:
    """The RootFS calls this layer makes, each path first resolved inside the root with
    :func:`real_path`, so a link in a captured root (``/etc/systemd/system -> /elsewhere``, an
    EnvironmentFile linked to ``/etc/shadow``) is followed as that system would follow it and
    never into the machine gd-doctor runs on. Results name the path as asked."""

    def __init__(self, fs: RootFS) -> None:
        self.fs = fs

    def _in(self, path: str) -> str:
        return real_path(self.fs, path)

    def read(self, path: str, max_bytes: int) -> FileRead:
        return replace(self.fs.read(self._in(path), max_bytes=max_bytes), path=path)

    def stat(self, path: str) -> Optional[os.stat_result]:
        return self.fs.stat(self._in(path))

    def exists(self, path: str) -> bool:
        return self.fs.exists(self._in(path))

    def is_file(self, path: str) -> bool:
        return self.fs.is_file(self._in(path))

    def is_dir(self, path: str) -> bool:
        return self.fs.is_dir(self._in(path))

    def listdir(self, path: str) -> Optional[List[str]]:
        return self.fs.listdir(self._in(path))

    def glob(self, directory: str, pattern: str) -> List[str]:
        base = directory.rstrip("/")
        return [f"{base}/{p.rsplit('/', 1)[1]}" for p in self.fs.glob(self._in(directory), pattern)]

    def readlink(self, path: str) -> Optional[str]:
        """The link ``path`` itself (its directory resolved, its last component not)."""
        directory, _, base = path.rstrip("/").rpartition("/")
        return self.fs.readlink(f"{self._in(directory or '/').rstrip('/')}/{base}")

    def host_path(self, path: str) -> str:
        """Where ``path`` of the root is on this machine (for SQLite, which opens by name)."""
        return str(self.fs.path(self._in(path)))


def _split_name(name: str) -> Tuple[str, str]:
    stem, dot, suffix = name.rpartition(".")
    return (stem, suffix) if dot else (name, "")


def _template_of(name: str) -> Optional[str]:
    stem, suffix = _split_name(name)
    prefix, at, instance = stem.partition("@")
    return f"{prefix}@.{suffix}" if at and instance else None


def _dash_prefixes(name: str) -> List[str]:
    """``foo-bar-baz.service`` -> ``foo-bar-.service``, ``foo-.service`` (dropin.c)."""
    stem, suffix = _split_name(name)
    prefix, at, instance = stem.partition("@")
    out: List[str] = []
    work = prefix
    while True:
        cut = work.rstrip("-") if work.endswith("-") else work
        dash = cut.rfind("-")
        if dash <= 0:
            return out
        work = cut[: dash + 1]
        out.append(f"{work}{'@' + instance if at else ''}.{suffix}")


class UnitResolver:
    """Answers "what is the effective unit" for unit names; results are cached per name."""

    def __init__(self, fs: RootFS) -> None:
        self.root_fs = fs
        self.fs = ConfinedFS(fs)
        self._lock = threading.Lock()
        self._dirs: Optional[Tuple[str, ...]] = None
        self._cache: Dict[str, EffectiveUnit] = {}
        self._aliases: Optional[Dict[str, Tuple[str, ...]]] = None
        self._manager: Optional[ManagerConfig] = None

    # --- public -----------------------------------------------------------------------------

    def resolve(self, name: str) -> EffectiveUnit:
        """The effective unit ``name`` (``amazon-guardduty-agent.service``; no suffix means
        ``.service``)."""
        if "." not in name:
            name += ".service"
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None:
            return cached
        unit = self._resolve(name)
        with self._lock:
            return self._cache.setdefault(name, unit)

    def search_path(self) -> Tuple[str, ...]:
        """The existing unit directories, highest precedence first, each counted once."""
        with self._lock:
            if self._dirs is None:
                order = SPLIT_USR_UNIT_PATH if self._split_usr() else SYSTEM_UNIT_PATH
                self._dirs = self._unique_dirs(order)
            return self._dirs

    def _split_usr(self) -> bool:
        """Whether systemd was built for a split /usr (Debian and Ubuntu before systemd 255):
        it then searches /lib/systemd/system before /usr/lib/systemd/system, and names units
        found there (the same directory on merged-/usr systems) /lib/systemd/system/..."""
        if not self.fs.exists("/etc/debian_version"):
            return False
        multiarch = [n for n in self.fs.listdir("/usr/lib") or [] if "-linux-" in n]
        for d in (
            "/usr/lib/systemd",
            "/lib/systemd",
            *(f"/usr/lib/{n}/systemd" for n in multiarch),
        ):
            for lib in self.fs.glob(d, "libsystemd-shared-*.so"):
                version = lib.rsplit("-", 1)[1][: -len(".so")]
                if version.isdigit():
                    return int(version) < 255
        return False

    def manager_files(self) -> Tuple[str, ...]:
        """system.conf then its drop-ins, in the order systemd applies them."""
        entries, _, _ = self._conf_d_files(self._unique_dirs(SYSTEM_CONF_DIRS), MAX_DROP_INS)
        main = (SYSTEM_CONF,) if self.fs.is_file(SYSTEM_CONF) else ()
        return main + tuple(e.path for e in entries if not e.null)

    # --- directory entries -----------------------------------------------------------------

    def _unique_dirs(self, dirs: Sequence[str]) -> Tuple[str, ...]:
        """Existing directories, dropping any that is the same directory as an earlier one."""
        seen: Set[Tuple[int, int]] = set()
        out: List[str] = []
        for d in dirs:
            st = self.fs.stat(d)
            if st is None or not stat_mod.S_ISDIR(st.st_mode):
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            out.append(d)
        return tuple(out)

    def _canonical(self, path: str) -> str:
        """A path in a unit directory named as systemd names it: by the search-path entry that
        is the same directory (``/usr/lib/...`` is ``/lib/...`` on Debian 12)."""
        directory, _, base = path.rpartition("/")
        st = self.fs.stat(directory)
        if st is None:
            return path
        for d in self.search_path():
            other = self.fs.stat(d)
            if other is not None and (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                return f"{d}/{base}"
        return path

    def _entry(self, path: str) -> Optional[_Entry]:
        """What systemd would make of ``path``: None when absent or not a file."""
        link = self.fs.readlink(path)
        if link is not None:
            target = self._canonical(_join(path.rsplit("/", 1)[0], link))
            if target == "/dev/null":
                return _Entry(path, null=True, target=target)
            st = self.fs.stat(target)
            if st is None:
                return None  # a dangling link: systemd ignores it
            if stat_mod.S_ISCHR(st.st_mode) or (stat_mod.S_ISREG(st.st_mode) and st.st_size == 0):
                return _Entry(path, null=True, target=target)
            return _Entry(path, null=False, target=target) if stat_mod.S_ISREG(st.st_mode) else None
        st = self.fs.stat(path)
        if st is None:
            return None
        if stat_mod.S_ISCHR(st.st_mode) or (stat_mod.S_ISREG(st.st_mode) and st.st_size == 0):
            return _Entry(path, null=True)
        return _Entry(path, null=False) if stat_mod.S_ISREG(st.st_mode) else None

    def _conf_d_files(
        self, dirs: Sequence[str], cap: int
    ) -> Tuple[List[_Entry], List[str], List[str]]:
        """``*.conf`` files of ``dirs`` as conf_files_list_strv(): first directory wins a
        name, result sorted by name. Returns (entries, overridden paths, notes)."""
        by_name: Dict[str, _Entry] = {}
        overridden: List[str] = []
        notes: List[str] = []
        for d in dirs:
            for fname in self.fs.listdir(d) or []:
                if not fname.endswith(".conf") or fname.startswith("."):
                    continue
                path = f"{d}/{fname}"
                if fname in by_name:
                    overridden.append(path)
                    continue
                if len(by_name) >= cap:
                    notes.append(f"more than {cap} drop-ins: the rest is not read")
                    break
                entry = self._entry(path)
                if entry is not None:
                    by_name[fname] = entry
        return [by_name[n] for n in sorted(by_name)], overridden, notes

    # --- resolution ------------------------------------------------------------------------

    def _fragment(self, name: str) -> Optional[_Entry]:
        for d in self.search_path():
            entry = self._entry(f"{d}/{name}")
            if entry is not None:
                return entry
        return None

    def _names_and_fragment(self, name: str) -> Tuple[List[str], Optional[_Entry]]:
        """The unit's names (itself, then aliases it links to) and its fragment entry."""
        names = [name]
        entry = self._fragment(name)
        if entry is None:
            template = _template_of(name)
            entry = self._fragment(template) if template else None
        hops = 0
        while entry is not None and not entry.null and entry.target and hops < MAX_ALIAS_HOPS:
            hops += 1
            target_name = entry.target.rsplit("/", 1)[1]
            if target_name == names[-1] or target_name in names:
                break
            names.append(target_name)  # an alias: the target's own drop-ins apply too
            target_dir = entry.target.rsplit("/", 1)[0]
            if target_dir not in self.search_path():
                break
            again = self._entry(entry.target)
            if again is None:
                break
            entry = again
        for alias in self._alias_map().get(names[-1], ()):
            if alias not in names:
                names.append(alias)  # another name linking to this unit: its drop-ins apply
        return names, entry

    def _alias_map(self) -> Dict[str, Tuple[str, ...]]:
        """Unit name -> the other names that are links to it in the unit directories (what
        systemd's unit_file_build_name_map() finds), built once."""
        with self._lock:
            if self._aliases is not None:
                return self._aliases
        found: Dict[str, Set[str]] = {}
        for d in self.search_path():
            for fname in (self.fs.listdir(d) or [])[:MAX_DIR_ENTRIES]:
                link = self.fs.readlink(f"{d}/{fname}")
                if link is None or "." not in fname:
                    continue
                target = link.rstrip("/").rsplit("/", 1)[-1]
                if target != fname and _split_name(target)[1] == _split_name(fname)[1]:
                    found.setdefault(target, set()).add(fname)
        result = {k: tuple(sorted(v)) for k, v in found.items()}
        with self._lock:
            self._aliases = result
        return result

    def _drop_in_dirs(self, names: Sequence[str]) -> Tuple[str, ...]:
        dirs: List[str] = []
        suffix = _split_name(names[0])[1]
        for name in names:
            variants = [name]
            template = _template_of(name)
            if template:
                variants.append(template)
            variants += _dash_prefixes(name)
            for base in self.search_path():
                dirs.extend(f"{base}/{v}.d" for v in variants)
        if suffix:
            dirs.extend(f"{base}/{suffix}.d" for base in self.search_path())
        # systemd names drop-in directories by their canonical path (chase_symlinks):
        # /usr/lib/systemd/system/x.d even where it searched /lib/systemd/system.
        return self._unique_dirs([real_path(self.root_fs, d) for d in dirs])

    def _read_unit(self, path: str, unreadable: List[Tuple[str, str]]) -> Optional[UnitFile]:
        read = self.fs.read(path, MAX_UNIT_BYTES)
        if read.truncated:
            unreadable.append((path, f"larger than {MAX_UNIT_BYTES // 1024} KiB, not read"))
            return None
        if not read.ok or read.text is None:
            unreadable.append((path, read.problem or "unreadable"))
            return None
        return parse_unit_file(read.text, path)

    def _resolve(self, name: str) -> EffectiveUnit:
        names, entry = self._names_and_fragment(name)
        if entry is None:
            return EffectiveUnit(name=name, load_state="not-found")
        drop_entries, overridden, notes = self._conf_d_files(
            self._drop_in_dirs(names), MAX_DROP_INS
        )
        masked_drop = tuple(e.path for e in drop_entries if e.null)
        applied = [e for e in drop_entries if not e.null]
        if entry.null:
            return EffectiveUnit(
                name=name,
                load_state="masked",
                fragment_path=entry.path,
                masked=True,
                aliases=tuple(names[1:]),
                masked_drop_ins=masked_drop,
                overridden_drop_ins=tuple(overridden),
                errors=tuple(notes),
            )
        unreadable: List[Tuple[str, str]] = []
        # systemd 252 names a unit linked under its own name (`systemctl link`) by the link,
        # an alias (a link to another name) by the target it loads.
        same_name = entry.target is None or entry.target.rsplit("/", 1)[1] == names[0]
        fragment_path = entry.path if same_name else (entry.target or entry.path)
        fragment = self._read_unit(fragment_path, unreadable)
        drop_ins = [self._read_unit(e.path, unreadable) for e in applied]
        parsed = [f for f in [fragment, *drop_ins] if f is not None]
        settings = collect_settings(parsed)
        env, env_errors = environment_from_settings(settings.get("Service.Environment", ()), name)
        env_files, file_errors = environment_files_from_settings(
            settings.get("Service.EnvironmentFile", ()), name
        )
        manager_env, manager_errors = self.manager_environment()
        return EffectiveUnit(
            name=name,
            load_state="loaded" if fragment is not None else "unreadable",
            fragment_path=fragment_path,
            aliases=tuple(names[1:]),
            drop_in_paths=tuple(e.path for e in drop_entries),
            masked_drop_ins=masked_drop,
            overridden_drop_ins=tuple(overridden),
            directives=settings,
            directive_sources=_sources(parsed),
            environment=env,
            environment_files=env_files,
            environment_file_reads=self._read_env_files(env_files),
            manager_environment=manager_env,
            unreadable=tuple(unreadable),
            errors=tuple(
                [e for f in parsed for e in f.errors]
                + list(env_errors)
                + list(file_errors)
                + list(manager_errors)
                + notes
            ),
        )

    # --- environment files and the manager's DefaultEnvironment= ---------------------------

    def _expand(self, setting: EnvironmentFileSetting) -> Tuple[List[str], Optional[str]]:
        """The paths one ``EnvironmentFile=`` entry stands for (a glob in the last component
        expanded and sorted, as glob(3) does), or a problem."""
        path = setting.path
        if not _GLOB_CHARS & set(path):
            return [path], None
        directory, _, pattern = path.rpartition("/")
        if _GLOB_CHARS & set(directory):
            return [], "a glob in a directory name is not expanded by gd-doctor"
        matches = sorted(self.fs.glob(directory or "/", pattern))
        return (matches, None) if matches else ([], "no file matches the pattern")

    def _read_env_files(
        self, settings: Sequence[EnvironmentFileSetting]
    ) -> Tuple[EnvironmentFileRead, ...]:
        out: List[EnvironmentFileRead] = []
        for setting in settings:
            paths, problem = self._expand(setting)
            pattern = setting.path if paths != [setting.path] else None
            if problem:
                out.append(EnvironmentFileRead(setting.path, setting.ignore_errors, (), problem))
            for path in paths:
                if len(out) >= MAX_ENV_FILES:
                    break
                read = self.fs.read(path, MAX_ENV_FILE_BYTES)
                if read.truncated:
                    why = f"larger than {MAX_ENV_FILE_BYTES // 1024} KiB, not read"
                    out.append(EnvironmentFileRead(path, setting.ignore_errors, (), why, pattern))
                elif not read.ok or read.text is None:
                    why = read.problem or "unreadable"
                    out.append(EnvironmentFileRead(path, setting.ignore_errors, (), why, pattern))
                else:
                    pairs = parse_environment_file(read.text, path).pairs
                    out.append(
                        EnvironmentFileRead(path, setting.ignore_errors, pairs, None, pattern)
                    )
        return tuple(out)

    def manager_config(self) -> ManagerConfig:
        """system.conf and its drop-ins merged (read once): what platform.memlock needs for
        ``DefaultLimitMEMLOCK=`` and what every unit inherits as ``DefaultEnvironment=``."""
        with self._lock:
            if self._manager is not None:
                return self._manager
        files: List[UnitFile] = []
        unreadable: List[Tuple[str, str]] = []
        paths = self.manager_files()
        for path in paths:
            read = self.fs.read(path, MAX_UNIT_BYTES)
            if read.truncated:
                unreadable.append((path, f"larger than {MAX_UNIT_BYTES // 1024} KiB, not read"))
            elif not read.ok or read.text is None:
                unreadable.append((path, read.problem or "unreadable"))
            else:
                files.append(parse_unit_file(read.text, path))
        settings = collect_settings(files)
        pairs, env_errors = environment_from_settings(
            settings.get("Manager.DefaultEnvironment", ()), ""
        )
        config = ManagerConfig(
            files=paths,
            directives=settings,
            directive_sources=_sources(files),
            default_environment=pairs,
            unreadable=tuple(unreadable),
            errors=tuple(e for f in files for e in f.errors) + env_errors,
        )
        with self._lock:
            self._manager = config
        return config

    def manager_environment(self) -> Tuple[Tuple[Tuple[str, str], ...], Tuple[str, ...]]:
        """``DefaultEnvironment=`` of system.conf and its drop-ins: (pairs, problems)."""
        config = self.manager_config()
        problems = tuple(f"{p}: {why}, DefaultEnvironment= unknown" for p, why in config.unreadable)
        return config.default_environment, problems + config.errors


def _sources(files: Sequence[UnitFile]) -> Dict[str, str]:
    """``Section.Key`` -> the file of its last non-empty assignment (an empty one resets)."""
    out: Dict[str, str] = {}
    for unit in files:
        for section, key, value in unit.assignments:
            name = f"{section}.{key}"
            if value:
                out[name] = unit.path
            else:
                out.pop(name, None)
    return out
