"""The effective systemd unit: which file systemd loads for a unit name, which drop-ins it
applies, and the settings and environment that result. Works the same on the live host and under
``--root``: everything is read through :class:`RootFS` behind :class:`ConfinedFS`, so links are
followed inside the root only.

What systemd 252 does, and this module follows (systemd.unit(5), src/shared/dropin.c,
src/basic/conf-files.c, src/core/load-fragment.c, src/core/execute.c); every rule below was
checked against a real systemd 252 (tests/host/test_units_systemd.py):

* Unit search path, highest precedence first: ``/etc/systemd/system.control``,
  ``/run/systemd/system.control``, ``/run/systemd/transient``, ``/run/systemd/generator.early``,
  ``/etc/systemd/system``, ``/etc/systemd/system.attached``, ``/run/systemd/system``,
  ``/run/systemd/system.attached``, ``/run/systemd/generator``, ``/usr/local/lib/systemd/system``,
  ``/usr/lib/systemd/system``, ``/lib/systemd/system``, ``/run/systemd/generator.late``. A
  directory that is the same as an earlier one (``/lib`` -> ``usr/lib`` on merged-/usr systems)
  counts once. Debian and Ubuntu build systemd before 255 for a split /usr: there
  ``/lib/systemd/system`` comes before ``/usr/lib/systemd/system``, so systemd names a vendor
  unit ``/lib/systemd/system/...`` (detected from ``/etc/debian_version`` and the version in
  ``libsystemd-shared-NNN.so``).
* The fragment is the unit file in the first directory that has one. An entry that is a link to
  ``/dev/null`` or an empty file masks the unit: systemd loads nothing (LoadState=masked). A link
  to a file of another name makes the unit an alias of that name (named by the target; other
  links to it add their drop-ins); a link under the unit's own name (``systemctl link``) is
  named by the link. An instance
  (``name@x.service``) without a file of its own uses its template (``name@.service``).
* Drop-in directories, in this order: for each name of the unit (the name, then its aliases),
  for each search directory: ``<name>.d/``, the template's ``.d/``, then the dash prefixes
  (``amazon-guardduty-.service.d/``, ``amazon-.service.d/``); last the type-level
  ``service.d/`` of each search directory (systemd 247+). Of same-named ``*.conf`` files the
  one in the earlier directory wins, and a link to ``/dev/null`` or an empty file there hides
  the others (it stays in DropInPaths); all files are applied in the lexical order of their
  names. Drop-in directories are named by their real path (``/usr/lib/...`` on Debian too).
* Settings: later assignments win, an empty assignment resets (lists and single values alike);
  ``Environment=`` is split, unquoted and unescaped as systemd does, ``%`` specifiers are
  expanded; ``EnvironmentFile=`` paths must be absolute and free of ``..``, ``-`` makes an
  unreadable file
  harmless, a glob in the last path component is expanded (execute.c globs every path); the
  files' assignments override ``Environment=``, and ``DefaultEnvironment=`` of
  ``/etc/systemd/system.conf`` (and its ``system.conf.d`` drop-ins) is under both.

Not resolved: generators are not run (only what they left in ``/run``), ``PassEnvironment=``
and ``UnsetEnvironment=`` are not applied, machine-dependent specifiers (``%H``, ``%m``, ``%b``)
stay as written, globs in directory components are not expanded (reported as unread), user
units are not searched. Values may hold secrets (proxy credentials): callers redact.
"""

from __future__ import annotations

import stat as stat_mod
import threading
from typing import Dict, List, Optional, Sequence, Set, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.host.fs import RootFS
from gd_doctor.host.rootpath import ConfinedFS, join_in_root, real_path
from gd_doctor.host.unit_model import (
    SYSTEM_CONF,
    EffectiveUnit,
    EnvironmentFileRead,
    ManagerConfig,
)
from gd_doctor.parsers.systemd_env import (
    EnvironmentFileSetting,
    environment_files_from_settings,
    environment_from_settings,
    parse_environment_file,
)
from gd_doctor.parsers.unit_file import (
    UnitFile,
    collect_settings,
    dash_prefixes,
    parse_unit_file,
    settings_sources,
    split_unit_name,
    template_of,
)

__all__ = [
    "SYSTEM_UNIT_PATH",
    "ConfinedFS",
    "EffectiveUnit",
    "EnvironmentFileRead",
    "ManagerConfig",
    "UnitResolver",
    "real_path",
]

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
class _Entry:
    """One directory entry as systemd sees it: null (a mask), a file, or a link elsewhere."""

    path: str
    null: bool
    target: Optional[str] = None  # the resolved path a symlink points to


class UnitResolver:
    """Answers "what is the effective unit" for unit names; results are cached per name."""

    def __init__(self, fs: RootFS) -> None:
        self.root_fs = fs
        self.fs = ConfinedFS(fs)
        self._lock = threading.Lock()
        self._alias_lock = threading.Lock()
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
            target = self._canonical(join_in_root(path.rsplit("/", 1)[0], link))
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
            template = template_of(name)
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
        with self._alias_lock:  # one thread builds it; units resolved in parallel wait for it
            if self._aliases is None:
                self._aliases = self._build_alias_map()
            return self._aliases

    def _build_alias_map(self) -> Dict[str, Tuple[str, ...]]:
        found: Dict[str, Set[str]] = {}
        for d in self.search_path():
            names = [n for n in (self.fs.listdir(d) or [])[:MAX_DIR_ENTRIES] if "." in n]
            for fname, link in self.fs.readlinks(d, names).items():
                target = link.rstrip("/").rsplit("/", 1)[-1]
                if target != fname and split_unit_name(target)[1] == split_unit_name(fname)[1]:
                    found.setdefault(target, set()).add(fname)
        return {k: tuple(sorted(v)) for k, v in found.items()}

    def _drop_in_dirs(self, names: Sequence[str]) -> Tuple[str, ...]:
        dirs: List[str] = []
        suffix = split_unit_name(names[0])[1]
        for name in names:
            variants = [name]
            template = template_of(name)
            if template:
                variants.append(template)
            variants += dash_prefixes(name)
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
            directive_sources=settings_sources(parsed),
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
            directive_sources=settings_sources(files),
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
